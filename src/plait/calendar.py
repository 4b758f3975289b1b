"""Calendars in iCalendar (.ics) form: reading a person's busy times and writing proposed events.

Reading uses ``icalendar`` (RFC 5545 parsing) and ``recurring-ical-events`` (RRULE/RDATE/EXDATE expansion
and moved occurrences). Real calendars contain broken events: a date that does not parse, an event with
no start, an end before its start. Each such event is left out and named in ``CalendarData.problems``;
the rest of the calendar is still used. Events marked free (TRANSP:TRANSPARENT) or cancelled do not
block time. Floating times (no time zone) are read in the person's time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.errors import InputError, MissingDependency

PRODID = "-//plait//plan//EN"


@dataclass(frozen=True)
class Event:
    start: dt.datetime  # time-zone aware
    end: dt.datetime
    summary: str = ""
    uid: str = ""
    all_day: bool = False
    busy: bool = True
    description: str = ""


@dataclass
class CalendarData:
    events: list[Event] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # one line per event left out, and why


def _libs() -> tuple[Any, Any]:
    try:
        import icalendar
        import recurring_ical_events
    except ImportError as exc:
        raise MissingDependency("reading calendars", extra="plan", package="icalendar recurring-ical-events") \
            from exc
    return icalendar, recurring_ical_events


def _aware(value: dt.date | dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=tz)
    return dt.datetime.combine(value, dt.time(), tzinfo=tz)  # an all-day date starts at local midnight


def _label(component: Any) -> str:
    summary = str(component.get("SUMMARY", "") or "").strip()
    uid = str(component.get("UID", "") or "").strip()
    return repr(summary) if summary else (f"UID {uid}" if uid else "an event without a summary")


def _check_event(component: Any) -> str | None:
    """Why this VEVENT cannot be used, or None when it can."""
    errors = getattr(component, "errors", None) or []
    if errors:
        name, message = errors[0]
        return f"{name}: {message}"
    start_prop = component.get("DTSTART")
    if start_prop is None:
        return "it has no start (DTSTART)"
    try:
        start = start_prop.dt
        end_prop, duration_prop = component.get("DTEND"), component.get("DURATION")
        end = end_prop.dt if end_prop is not None else None
        duration = duration_prop.dt if duration_prop is not None else None
    except Exception as exc:  # icalendar raises its own types for broken values
        return str(exc)
    if not isinstance(start, dt.date):
        return "its start is not a date or time"
    if end is not None:
        if isinstance(start, dt.datetime) != isinstance(end, dt.datetime):
            return "its start and end mix a date with a date-time"
        tz = dt.UTC
        if _aware(end, tz) < _aware(start, tz):
            return "it ends before it starts"
    if duration is not None and isinstance(duration, dt.timedelta) and duration < dt.timedelta(0):
        return "its duration is negative"
    return None


def _parse(data: bytes, name: str) -> list[Any]:
    icalendar, _ = _libs()
    if not data.strip():
        raise InputError(f"{name} is empty: expected an iCalendar (.ics) file")
    try:
        calendars = icalendar.Calendar.from_ical(data, multiple=True)
    except (ValueError, IndexError, KeyError) as exc:
        raise InputError(f"{name} is not an iCalendar file ({exc}); export the calendar as .ics") from exc
    calendars = [c for c in calendars if c.name == "VCALENDAR"]
    if not calendars:
        raise InputError(f"{name} has no VCALENDAR; export the calendar as .ics")
    return calendars


def read_calendar(source: str | Path | bytes, start: dt.datetime, end: dt.datetime, *,
                  tz: dt.tzinfo) -> CalendarData:
    """The events of an .ics file (path or bytes) that overlap [start, end), recurrences expanded."""
    icalendar, recurring_ical_events = _libs()
    if isinstance(source, bytes):
        data, name = source, "the calendar"
    else:
        path = Path(source)
        try:
            from plait.security.storage import unsealed

            data, name = unsealed(path, path.read_bytes()), str(path)  # plait's own .ics outputs are sealed
        except OSError as exc:
            raise InputError(f"cannot read calendar {path}: {exc.strerror or exc}") from exc
    out = CalendarData()
    for calendar in _parse(data, name):
        clean = icalendar.Calendar()
        for key, value in calendar.items():
            clean[key] = value
        candidates = []
        for component in calendar.subcomponents:
            if component.name == "VEVENT":
                problem = _check_event(component)
                if problem:
                    out.problems.append(f"left out {_label(component)}: {problem}")
                    continue
                candidates.append(component)
            clean.add_component(component)
        try:
            occurrences = list(recurring_ical_events.of(clean).between(start, end))
        except Exception:  # an event that passed the checks still broke expansion: find it, keep the rest
            occurrences = _expand_one_by_one(calendar, candidates, start, end, out.problems)
        out.events.extend(e for e in (_event(o, tz) for o in occurrences) if e is not None)
    out.events.sort(key=lambda e: (e.start, e.end))
    return out


def _expand_one_by_one(calendar: Any, events: Sequence[Any], start: dt.datetime, end: dt.datetime,
                       problems: list[str]) -> list[Any]:
    icalendar, recurring_ical_events = _libs()
    timezones = [c for c in calendar.subcomponents if c.name == "VTIMEZONE"]
    by_uid: dict[str, list[Any]] = {}
    for event in events:  # a recurring event and its moved occurrences share a UID: expand them together
        by_uid.setdefault(str(event.get("UID", id(event))), []).append(event)
    found: list[Any] = []
    for group in by_uid.values():
        single = icalendar.Calendar()
        for component in [*timezones, *group]:
            single.add_component(component)
        try:
            found.extend(recurring_ical_events.of(single).between(start, end))
        except Exception as exc:
            problems.append(f"left out {_label(group[0])}: its recurrence cannot be expanded ({exc})")
    return found


def _event(component: Any, tz: dt.tzinfo) -> Event | None:
    start_value = component.get("DTSTART").dt
    end_prop = component.get("DTEND")
    all_day = not isinstance(start_value, dt.datetime)
    start = _aware(start_value, tz)
    if end_prop is not None:
        end = _aware(end_prop.dt, tz)
    elif component.get("DURATION") is not None:
        end = start + component.get("DURATION").dt
    else:
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(0))  # RFC 5545 §3.6.1
    status = str(component.get("STATUS", "")).upper()
    transparent = str(component.get("TRANSP", "")).upper() == "TRANSPARENT"
    return Event(start=start, end=end, summary=str(component.get("SUMMARY", "") or ""),
                 uid=str(component.get("UID", "") or ""), all_day=all_day,
                 busy=not transparent and status != "CANCELLED",
                 description=str(component.get("DESCRIPTION", "") or ""))


def write_calendar(events: Sequence[Event], *, name: str = "plait plan",
                   now: dt.datetime | None = None) -> bytes:
    """An .ics file holding ``events`` (times written in UTC, so every client reads them the same)."""
    icalendar, _ = _libs()
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    for event in events:
        item = icalendar.Event()
        item.add("uid", event.uid)
        item.add("dtstamp", stamp)
        item.add("dtstart", event.start.astimezone(dt.UTC))
        item.add("dtend", event.end.astimezone(dt.UTC))
        item.add("summary", event.summary)
        if event.description:
            item.add("description", event.description)
        item.add("transp", "OPAQUE" if event.busy else "TRANSPARENT")
        calendar.add_component(item)
    return bytes(calendar.to_ical())
