"""Calendar output: each item adds an event to an .ics file, e.g. proposed meeting times (written with
:func:`plait.calendar.write_calendar`).

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

from plait.errors import InputError
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
    busy: bool = Field(False, description="whether the event blocks time (proposals usually do not)")
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
        start = start if start.tzinfo else start.astimezone()
        end = end if end.tzinfo else end.astimezone()
        if end <= start:
            raise InputError(f"step '{ctx.step_path}': the event ends ({end.isoformat()}) before it starts")
        uid = hashlib.sha256(f"{self.env.workflow}|{ctx.item_key}|{ctx.step_path}".encode()).hexdigest()[:32]
        data = {"uid": f"{uid}@plait", "summary": ctx.render_text(o.summary), "start": start.isoformat(),
                "end": end.isoformat(), "description": ctx.render_text(o.description) if o.description else ""}
        return str(ctx.output_path(o.path)), start.timestamp(), data

    def render(self, target: str, entries: list[Entry]) -> list[str]:
        from plait.calendar import Event, write_calendar

        events = [Event(start=datetime.fromisoformat(e.data["start"]), end=datetime.fromisoformat(e.data["end"]),
                        summary=e.data["summary"], uid=e.data["uid"], description=e.data.get("description", ""),
                        busy=self.options.busy) for e in entries]
        stamp = datetime.fromtimestamp(self.env.clock.now(), UTC)
        write_atomic(Path(target), write_calendar(events, name=self.options.name, now=stamp))
        return [target]
