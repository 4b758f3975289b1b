"""Calendar output: each item adds an event to an .ics file (icalendar), e.g. proposed meeting times.

The event's UID is derived from the workflow, item and step, so the same item always gives the same
event; the file is rewritten from all gathered events after each batch, and calendar apps that import it
again update events rather than duplicate them.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from plait.errors import InputError, MissingDependency
from plait.workflows.context import StepContext
from plait.workflows.errors import StepError
from plait.workflows.sinks import SinkOptions, write_atomic
from plait.workflows.sinks.gather import Entry, GatherSink
from plait.workflows.templates import to_datetime


class IcsOptions(SinkOptions):
    path: str = Field("calendar.ics", description="the .ics file (a template), relative to the output folder")
    summary: str = Field(description="the event's title (a template)")
    start: str = Field(description="template giving the start: ISO 8601 (with a zone, or local)")
    end: str | None = Field(None, description="template giving the end (default: start + duration_minutes)")
    duration_minutes: int = Field(30, ge=1, le=60 * 24 * 14)
    description: str | None = None
    location: str | None = None
    attendees: str | list[str] | None = Field(None, description="e-mail addresses (a list or template)")
    status: str = Field("TENTATIVE", pattern=r"^(TENTATIVE|CONFIRMED|CANCELLED)$")
    name: str = Field("plait", description="the calendar's name")


class IcsSink(GatherSink):
    Options = IcsOptions
    options: IcsOptions

    def entry(self, ctx: StepContext) -> tuple[str, float, dict[str, Any]]:
        o = self.options
        raw_start = ctx.render(o.start)
        if raw_start in (None, ""):
            raise StepError(f"step '{ctx.step_path}': the event has no start time (`start` gave nothing)")
        try:
            start = to_datetime(raw_start)
            end = to_datetime(ctx.render(o.end)) if o.end else start + timedelta(minutes=o.duration_minutes)
        except ValueError as exc:
            raise InputError(f"step '{ctx.step_path}': {exc}") from exc
        if start.tzinfo is None:
            start = start.astimezone()
        if end.tzinfo is None:
            end = end.astimezone()
        attendees = ctx.render(o.attendees) if o.attendees is not None else []
        if isinstance(attendees, str):
            attendees = [a.strip() for a in attendees.split(",") if a.strip()]
        uid = hashlib.sha256(f"{self.env.workflow}|{ctx.item_key}|{ctx.step_path}".encode()).hexdigest()[:32]
        data = {"uid": f"{uid}@plait", "summary": ctx.render_text(o.summary), "start": start.isoformat(),
                "end": end.isoformat(), "description": ctx.render_text(o.description) if o.description else "",
                "location": ctx.render_text(o.location) if o.location else "", "attendees": list(attendees)}
        target = str(ctx.output_path(o.path))
        return target, start.timestamp(), data

    def render(self, target: str, entries: list[Entry]) -> list[str]:
        try:
            import icalendar
        except ImportError as exc:
            raise MissingDependency(".ics output", extra="workflows", package="icalendar") from exc
        cal = icalendar.Calendar()
        cal.add("prodid", "-//plait//workflows//EN")
        cal.add("version", "2.0")
        cal.add("x-wr-calname", self.options.name)
        stamp = datetime.fromtimestamp(self.env.clock.now(), UTC)
        for e in entries:
            d = e.data
            event = icalendar.Event()
            event.add("uid", d["uid"])
            event.add("dtstamp", stamp)
            event.add("summary", d["summary"])
            event.add("dtstart", datetime.fromisoformat(d["start"]))
            event.add("dtend", datetime.fromisoformat(d["end"]))
            event.add("status", self.options.status)
            if d.get("description"):
                event.add("description", d["description"])
            if d.get("location"):
                event.add("location", d["location"])
            for person in d.get("attendees", []):
                event.add("attendee", f"mailto:{person}")
            cal.add_component(event)
        write_atomic(Path(target), cal.to_ical())
        return [target]
