"""A calendar (.ics file or URL): one item per upcoming event, each repetition of a repeating event
its own item.

Events starting within ``lookahead_days`` (and, on the first run, back to ``lookbehind_days``) are items.
The key is the event's UID, its occurrence and its SEQUENCE, so an event moved or edited by its organiser
(SEQUENCE goes up) comes through again, and an unchanged one never does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field

from plait.errors import InputError
from plait.workflows.errors import TriggerError
from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions


class CalendarOptions(TriggerOptions):
    source: str = Field(description="an .ics file, or an http(s)/webcal URL")
    lookahead_days: float = Field(14.0, ge=0, le=3660)
    lookbehind_days: float = Field(0.0, ge=0, le=3660)
    timezone: str | None = Field(None, description="zone for events without one (default: this machine's)")
    poll_seconds: float = Field(900.0, ge=0.01, le=86_400)


class CalendarTrigger(Trigger):
    Options = CalendarOptions
    options: CalendarOptions

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        from plait.workflows.calendars import load_calendar_bytes, parse_events

        o = self.options
        zone = ZoneInfo(o.timezone) if o.timezone else self.env.clock.datetime().astimezone().tzinfo
        now = self.env.clock.datetime().astimezone(zone)
        data = load_calendar_bytes(o.source, base=self.env.base_dir, http=self.env.http() if self.env.http else None)
        try:
            events = parse_events(data, now - timedelta(days=o.lookbehind_days), now + timedelta(days=o.lookahead_days),
                                  zone=zone, source=o.source)
        except InputError as exc:
            raise TriggerError(str(exc)) from exc
        keys = [f"event:{e.key}" for e in events]
        known = self.env.known(keys)
        for key, event in zip(keys, events, strict=True):
            if key not in known:
                yield TriggerItem(key, event.as_dict(), event.start.timestamp())
