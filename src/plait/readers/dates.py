"""Dates found in document metadata, as ISO 8601 strings.

Each format writes dates its own way: mail headers in RFC 2822, PDF as ``D:20240102153000+01'00'``,
front matter and HTML meta tags in ISO 8601 or whatever a person typed. All become ISO 8601 here.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_PDF_DATE = re.compile(r"^D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?([Zz+\-])?(\d{2})?'?(\d{2})?'?$")


def iso_date(value: str | date | datetime | None) -> str | None:
    """ISO 8601 for a date in any common notation; None when it cannot be read."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = value.strip()
    if not text:
        return None
    try:
        if len(text) == 10:  # a plain date stays a date
            return date.fromisoformat(text).isoformat()
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        pass
    pdf = _PDF_DATE.match(text)
    if pdf:
        return _pdf_date(pdf)
    try:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(text).isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    try:
        import dateparser
    except ImportError:
        return None
    parsed = dateparser.parse(text, settings={"STRICT_PARSING": False, "REQUIRE_PARTS": ["year"]})
    return parsed.isoformat() if parsed else None


def _pdf_date(m: re.Match[str]) -> str | None:
    from datetime import timedelta, timezone

    year, month, day, hour, minute, second, sign, tzh, tzm = m.groups()
    try:
        tz = None
        if sign in ("Z", "z"):
            tz = UTC
        elif sign in ("+", "-") and tzh:
            offset = timedelta(hours=int(tzh), minutes=int(tzm or 0))
            tz = timezone(offset if sign == "+" else -offset)
        return datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                        int(second or 0), tzinfo=tz).isoformat()
    except ValueError:
        return None
