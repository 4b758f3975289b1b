"""Reading iCalendar (.ics) files and URLs into events, recurrences expanded (icalendar and
recurring-ical-events); used by the calendar trigger and the ``free_slot`` helper."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from plait.errors import InputError, MissingDependency
from plait.workflows.errors import TriggerError


@dataclass(frozen=True)
class Event:
    uid: str
    summary: str
    start: datetime  # aware
    end: datetime
    all_day: bool
    location: str = ""
    description: str = ""
    organizer: str = ""
    attendees: tuple[str, ...] = ()
    sequence: int = 0
    recurrence_id: str = ""  # set for one occurrence of a repeating event

    @property
    def key(self) -> str:
        return f"{self.uid}|{self.recurrence_id or self.start.isoformat()}|{self.sequence}"

    def as_dict(self) -> dict[str, Any]:
        return {"uid": self.uid, "summary": self.summary, "start": self.start.isoformat(),
                "end": self.end.isoformat(), "all_day": self.all_day, "location": self.location,
                "description": self.description, "organizer": self.organizer, "attendees": list(self.attendees),
                "sequence": self.sequence, "recurrence_id": self.recurrence_id,
                "text": f"{self.summary}\n{self.description}".strip()}


def _libs() -> tuple[Any, Any]:
    try:
        import icalendar
        import recurring_ical_events
    except ImportError as exc:
        raise MissingDependency("calendars", extra="workflows", package="icalendar and recurring-ical-events") \
            from exc
    return icalendar, recurring_ical_events


def load_calendar_bytes(source: str, *, base: Path, http: Any = None, timeout: float = 30.0) -> bytes:
    """The bytes of an .ics file or URL; TriggerError if it cannot be read."""
    if source.startswith(("http://", "https://", "webcal://")):
        import httpx

        url = "https://" + source[len("webcal://"):] if source.startswith("webcal://") else source
        try:
            client = http or httpx.Client(follow_redirects=True)
            resp = client.get(url, timeout=timeout)
        except httpx.HTTPError as exc:
            raise TriggerError(f"cannot fetch calendar {url} ({exc}); check the URL and the network") from exc
        if resp.status_code != 200:
            raise TriggerError(f"calendar {url} answered {resp.status_code}; check the URL")
        return bytes(resp.content)
    path = Path(source).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise TriggerError(f"calendar file {path} does not exist (moved or deleted?); fix the workflow's "
                           "calendar path") from exc
    except OSError as exc:
        raise TriggerError(f"cannot read calendar file {path} ({exc.strerror})") from exc


def _aware(value: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    return datetime.combine(value, time(), zone)


def parse_events(data: bytes, start: datetime, end: datetime, *, zone: tzinfo = UTC,
                 source: str = "calendar") -> list[Event]:
    """Events overlapping [start, end), each repetition of a repeating event on its own, by start time."""
    icalendar, recurring = _libs()
    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise InputError(f"{source} is not a valid iCalendar file ({exc})") from exc
    try:
        components = recurring.of(cal).between(start, end)
    except Exception as exc:  # noqa: BLE001 - the library raises several types for malformed rules
        raise InputError(f"{source}: cannot expand its events ({type(exc).__name__}: {exc})") from exc
    events = []
    for comp in components:
        if comp.name != "VEVENT":
            continue
        dtstart = comp.get("DTSTART")
        if dtstart is None:
            continue
        begin = dtstart.dt
        all_day = not isinstance(begin, datetime)
        if comp.get("DTEND") is not None:
            finish = comp.get("DTEND").dt
        elif comp.get("DURATION") is not None:
            finish = begin + comp.get("DURATION").dt
        else:
            finish = begin + (timedelta(days=1) if all_day else timedelta(0))
        rid = comp.get("RECURRENCE-ID")
        attendees = comp.get("ATTENDEE") or []
        if not isinstance(attendees, list):
            attendees = [attendees]
        events.append(Event(
            uid=str(comp.get("UID") or f"{comp.get('SUMMARY')}@{begin}"), summary=str(comp.get("SUMMARY") or ""),
            start=_aware(begin, zone), end=_aware(finish, zone), all_day=all_day,
            location=str(comp.get("LOCATION") or ""), description=str(comp.get("DESCRIPTION") or ""),
            organizer=str(comp.get("ORGANIZER") or "").removeprefix("mailto:").removeprefix("MAILTO:"),
            attendees=tuple(str(a).removeprefix("mailto:").removeprefix("MAILTO:") for a in attendees),
            sequence=int(comp.get("SEQUENCE") or 0),
            recurrence_id=_aware(rid.dt, zone).isoformat() if rid is not None else "",
        ))
    events.sort(key=lambda e: (e.start, e.uid))
    return events
