"""A calendar (.ics file or URL): one item per upcoming event, each repetition of a repeating event
its own item (read with :func:`plait.calendar.read_calendar`).

Events starting within ``lookahead_days`` (and back to ``lookbehind_days``) are items. The key is the
event's UID, start, end and a hash of its text, so an event moved or edited by its organiser comes
through again, and an unchanged one never does. Broken events are left out and logged; the rest of the
calendar is still read.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field

from plait.errors import InputError
from plait.security.ssrf import NetworkPolicy, OutboundRefused, guarded_client, redirect_hint
from plait.workflows.errors import TriggerError
from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions

log = logging.getLogger("plait.workflows")


class CalendarOptions(TriggerOptions):
    source: str = Field(description="an .ics file, or an http(s)/webcal URL")
    lookahead_days: float = Field(14.0, ge=0, le=3660)
    lookbehind_days: float = Field(0.0, ge=0, le=3660)
    timezone: str | None = Field(None, description="zone for events without one (default: this machine's)")
    poll_seconds: float = Field(900.0, ge=0.01, le=86_400)
    timeout: float = Field(30.0, gt=0)


class CalendarTrigger(Trigger):
    Options = CalendarOptions
    options: CalendarOptions

    def _bytes(self) -> bytes:
        import httpx

        source = self.options.source
        if source.startswith(("http://", "https://", "webcal://")):
            url = "https://" + source[len("webcal://"):] if source.startswith("webcal://") else source
            client = self.env.http() if self.env.http else guarded_client(NetworkPolicy())
            try:
                resp = client.get(url, timeout=self.options.timeout)
            except httpx.HTTPError as exc:
                raise TriggerError(f"cannot fetch calendar {url} ({exc}); check the URL and the network") from exc
            except OutboundRefused as exc:
                raise TriggerError(str(exc)) from exc
            if resp.status_code != 200:
                raise TriggerError(f"calendar {url} answered {resp.status_code}{redirect_hint(resp)}; is the URL still "
                                   "right?")
            return bytes(resp.content)
        from plait.workflows.context import resolve_path

        path = resolve_path(source, self.env.base_dir)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise TriggerError(f"calendar file {path} cannot be read ({exc.strerror}); moved or deleted? fix the "
                               "trigger's source") from exc

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        from plait.calendar import read_calendar

        o = self.options
        zone = ZoneInfo(o.timezone) if o.timezone else self.env.clock.datetime().astimezone().tzinfo
        assert zone is not None
        now = self.env.clock.datetime().astimezone(zone)
        try:
            found = read_calendar(self._bytes(), now - timedelta(days=o.lookbehind_days),
                                  now + timedelta(days=o.lookahead_days), tz=zone)
        except InputError as exc:
            raise TriggerError(f"{o.source}: {exc}") from exc
        for problem in found.problems:
            log.warning("calendar %s: %s", o.source, problem)
        items = []
        for event in found.events:
            digest = hashlib.sha256(f"{event.summary}|{event.description}|{event.busy}".encode()).hexdigest()[:12]
            key = f"event:{event.uid or event.summary}|{event.start.isoformat()}|{event.end.isoformat()}|{digest}"
            items.append((key, {
                "uid": event.uid, "summary": event.summary, "description": event.description,
                "start": event.start.isoformat(), "end": event.end.isoformat(), "all_day": event.all_day,
                "busy": event.busy, "text": f"{event.summary}\n{event.description}".strip(),
            }, event.start.timestamp()))
        known = self.env.known([k for k, _, _ in items])
        for key, data, at in items:
            if key not in known:
                yield TriggerItem(key, data, at)
