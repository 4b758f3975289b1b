"""plan: propose a schedule for a person's tasks in the free time of their calendar.

Tasks come as free text (see :mod:`plait.tasks.plan_requests` for what is understood) or as
:class:`PlanTask` objects; the calendar is an .ics file (see :mod:`plait.calendar`). Free time is the
working hours of working days (``PlanConfig``), minus breaks, minus busy calendar events (with an
optional buffer around them), from now to the planning horizon.

Scheduling is greedy and explainable: each task goes into the earliest free time that fits, before its
deadline and not before its earliest start. Tasks longer than ``max_block_minutes`` are split into
blocks with a short break between them. Two orders are tried, earliest deadline first (which meets
every deadline whenever any order of whole tasks can) and highest priority first (which matters when
there is not enough time for everything); the plan that fits more high-priority work, then more
normal, then more low-priority work, then finishes earlier, is kept. A task that does not fit is
reported with the reason, never silently dropped.

The result renders as a readable agenda (:meth:`Plan.agenda`) and as an .ics file (:meth:`Plan.to_ics`)
to import into any calendar.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plait.calendar import CalendarData, Event, read_calendar, write_calendar
from plait.errors import ConfigError, InputError
from plait.runtime import Runtime, get_runtime
from plait.tasks.plan_requests import PRIORITY_RANK, PlanTask, WorkDay, parse_requests, refine_with_llm
from plait.tasks.registry import MAX_TEXT_CHARS, Task, TaskContext, TaskRequest

__all__ = ["Block", "Plan", "PlanConfig", "PlanTask", "Unscheduled", "plan"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UTC = dt.UTC


class PlanConfig(BaseModel):
    """Working hours and scheduling preferences."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = Field(default=None,
                                 description="IANA time zone, e.g. Europe/Berlin (default: this machine's)")
    work_start: dt.time = Field(default=dt.time(9, 0), description="start of the working day")
    work_end: dt.time = Field(default=dt.time(17, 0), description="end of the working day")
    work_days: tuple[str, ...] = Field(default=("mon", "tue", "wed", "thu", "fri"), description="working days")
    breaks: tuple[tuple[dt.time, dt.time], ...] = Field(default=(),
                                                        description="daily breaks, e.g. [['12:00', '13:00']]")
    horizon_days: int = Field(default=14, ge=1, le=366, description="how far ahead to plan")
    granularity_minutes: int = Field(default=15, ge=1, le=120, description="blocks start on multiples of this")
    buffer_minutes: int = Field(default=0, ge=0, le=240,
                                description="free time kept before and after calendar events")
    default_duration_minutes: int = Field(default=60, ge=1, description="duration of a task that gives none")
    max_block_minutes: int = Field(default=120, ge=0,
                                   description="split longer tasks into blocks of at most this (0: never)")
    min_block_minutes: int = Field(default=30, ge=1, description="shortest block of a split task")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                resolve_timezone(value)
            except ConfigError as exc:  # a request's value: the request's problem, not plait's settings
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("work_days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if not isinstance(value, str | list | tuple):
            raise ValueError("give the working days, e.g. mon-fri or [mon, tue, thu]")
        if isinstance(value, str):
            value = [part for part in value.replace(" ", ",").split(",") if part]
        days: list[str] = []
        for item in value:
            text = str(item).strip().lower()
            if "-" in text:  # a range like mon-fri
                first, _, last = text.partition("-")
                a, b = _day_index(first), _day_index(last)
                days.extend(DAY_NAMES[i % 7] for i in range(a, b + 1 if b >= a else b + 8))
            else:
                days.append(DAY_NAMES[_day_index(text)])
        return tuple(dict.fromkeys(days))

    @model_validator(mode="after")
    def _check(self) -> PlanConfig:
        times = [self.work_start, self.work_end, *(t for pair in self.breaks for t in pair)]
        if any(t.tzinfo is not None for t in times):
            raise ValueError("give times of day without a time zone, e.g. 09:00 (the plan's timezone applies)")
        if self.work_end <= self.work_start:
            raise ValueError(f"the working day ends ({self.work_end:%H:%M}) before it starts ({self.work_start:%H:%M})")
        if not self.work_days:
            raise ValueError("no working days")
        for start, end in self.breaks:
            if end <= start:
                raise ValueError(f"break {start:%H:%M}-{end:%H:%M} ends before it starts")
        return self

    def zone(self) -> dt.tzinfo:
        return resolve_timezone(self.timezone)

    def workday(self) -> WorkDay:
        return WorkDay(self.work_start, self.work_end, frozenset(DAY_NAMES.index(d) for d in self.work_days))


def _day_index(text: str) -> int:
    key = text.strip().lower()[:3]
    if key not in DAY_NAMES:
        raise ValueError(f"'{text}' is not a day of the week (mon, tue, wed, thu, fri, sat, sun)")
    return DAY_NAMES.index(key)


def resolve_timezone(name: str | None) -> dt.tzinfo:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"unknown time zone '{name}'; use an IANA name like Europe/Berlin or UTC") from exc
    try:
        import tzlocal

        return tzlocal.get_localzone()  # a real zone, so daylight-saving changes in the horizon are right
    except Exception:  # noqa: BLE001 - no tzlocal, or an unusual system set-up: fixed offset of now
        tz = dt.datetime.now().astimezone().tzinfo
        return tz or UTC


@dataclass(frozen=True)
class Block:
    task: PlanTask
    start: dt.datetime
    end: dt.datetime
    part: int = 1
    parts: int = 1

    @property
    def summary(self) -> str:
        return self.task.title + (f" ({self.part}/{self.parts})" if self.parts > 1 else "")


@dataclass(frozen=True)
class Unscheduled:
    task: PlanTask
    reason: str


@dataclass
class Plan:
    tasks: list[PlanTask]
    blocks: list[Block]
    unscheduled: list[Unscheduled]
    busy: list[Event]  # the calendar's events in the planning window
    problems: list[str]  # calendar events left out, and why
    start: dt.datetime
    end: dt.datetime
    timezone: dt.tzinfo
    config: PlanConfig = field(default_factory=lambda: PlanConfig())

    def events(self) -> list[Event]:
        out = []
        for block in self.blocks:
            task = block.task
            notes = [f"priority: {task.priority}"]
            if task.deadline:
                notes.append(f"deadline: {task.deadline.astimezone(self.timezone):%a %d %b %Y %H:%M}")
            notes.append(f"request: {task.text}")
            uid = hashlib.sha1(f"{task.text}|{block.part}|{block.start.isoformat()}".encode()).hexdigest()[:20]
            out.append(Event(start=block.start, end=block.end, summary=block.summary, uid=f"{uid}@plait",
                             description="\n".join(notes)))
        return out

    def to_ics(self) -> bytes:
        return write_calendar(self.events())

    def agenda(self) -> str:
        """A readable agenda: day by day, planned blocks among the calendar's events; then what did not fit."""
        tz = self.timezone
        rows: list[tuple[dt.datetime, dt.datetime, str]] = []
        for block in self.blocks:
            task = block.task
            extra = [] if task.priority == "normal" else [f"{task.priority} priority"]
            if task.deadline:
                extra.append(f"due {task.deadline.astimezone(tz):%a %d %b %H:%M}")
            rows.append((block.start, block.end, block.summary + (f"  [{', '.join(extra)}]" if extra else "")))
        # Calendar events give context on the days that have planned blocks; other days are left out.
        planned_days = {b.start.astimezone(tz).date() for b in self.blocks}
        for event in self.busy:
            if event.busy and event.start.astimezone(tz).date() in planned_days:
                rows.append((event.start, event.end, f"· {event.summary or '(busy)'}"
                             + ("  (all day)" if event.all_day else "")))
        rows.sort(key=lambda r: (r[0], r[1]))
        lines: list[str] = []
        day: dt.date | None = None
        for start, end, text in rows:
            local_start, local_end = start.astimezone(tz), end.astimezone(tz)
            if local_start.date() != day:
                day = local_start.date()
                lines.append(f"{local_start:%A %d %B %Y}")
            when = "all day    " if text.endswith("(all day)") else f"{local_start:%H:%M}–{local_end:%H:%M}"
            lines.append(f"  {when}  {text.removesuffix('  (all day)')}")
        if not self.blocks:
            lines.insert(0, "Nothing could be scheduled.")
        if self.unscheduled:
            lines.append("")
            lines.append("Not scheduled:")
            lines.extend(f"  {u.task.title}: {u.reason}" for u in self.unscheduled)
        if self.problems:
            lines.append("")
            lines.append("Calendar problems:")
            lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines) + "\n"

    def as_dict(self) -> dict[str, Any]:
        tz = self.timezone

        def iso(value: dt.datetime | None) -> str | None:
            return value.astimezone(tz).isoformat() if value else None

        def task_dict(task: PlanTask) -> dict[str, Any]:
            return {"title": task.title, "minutes": round(task.duration.total_seconds() / 60),
                    "priority": task.priority, "deadline": iso(task.deadline), "not_before": iso(task.not_before),
                    "request": task.text, "duration_given": task.duration_given}

        return {
            "start": iso(self.start), "end": iso(self.end), "timezone": str(tz),
            "blocks": [{"title": b.summary, "start": iso(b.start), "end": iso(b.end), "part": b.part,
                        "parts": b.parts, "task": task_dict(b.task)} for b in self.blocks],
            "unscheduled": [{"task": task_dict(u.task), "reason": u.reason} for u in self.unscheduled],
            "problems": list(self.problems),
        }


# --- free time -------------------------------------------------------------------------------------

Interval = tuple[dt.datetime, dt.datetime]  # UTC, start < end


def _subtract(free: list[Interval], start: dt.datetime, end: dt.datetime) -> list[Interval]:
    out: list[Interval] = []
    for a, b in free:
        if end <= a or b <= start:
            out.append((a, b))
            continue
        if a < start:
            out.append((a, start))
        if end < b:
            out.append((end, b))
    return out


def free_time(config: PlanConfig, start: dt.datetime, end: dt.datetime, busy: Sequence[Event]) -> list[Interval]:
    """Working time in [start, end) that no busy event (plus buffer) covers, as sorted UTC intervals."""
    tz = config.zone()
    work = config.workday()
    free: list[Interval] = []
    day = start.astimezone(tz).date()
    while dt.datetime.combine(day, dt.time(), tzinfo=tz) < end:
        if day.weekday() in work.days:
            a = dt.datetime.combine(day, config.work_start, tzinfo=tz).astimezone(UTC)
            b = dt.datetime.combine(day, config.work_end, tzinfo=tz).astimezone(UTC)
            pieces: list[Interval] = [(max(a, start), min(b, end))] if max(a, start) < min(b, end) else []
            for brk_start, brk_end in config.breaks:
                pieces = _subtract(pieces, dt.datetime.combine(day, brk_start, tzinfo=tz).astimezone(UTC),
                                   dt.datetime.combine(day, brk_end, tzinfo=tz).astimezone(UTC))
            free.extend(pieces)
        day += dt.timedelta(days=1)
    buffer = dt.timedelta(minutes=config.buffer_minutes)
    for event in busy:
        if event.busy:
            free = _subtract(free, event.start.astimezone(UTC) - buffer, event.end.astimezone(UTC) + buffer)
    return sorted(free)


def _round_up(value: dt.datetime, minutes: int) -> dt.datetime:
    epoch = dt.datetime(2000, 1, 1, tzinfo=UTC)
    step = dt.timedelta(minutes=minutes)
    rem = (value - epoch) % step
    return value if not rem else value + (step - rem)


# --- scheduling ------------------------------------------------------------------------------------

def _place(task: PlanTask, free: list[Interval], config: PlanConfig, window_start: dt.datetime
           ) -> tuple[list[Interval], list[Interval]] | str:
    """Blocks for ``task`` and the free time left, or why it does not fit.

    A task that fits in one block goes into the earliest free slot that holds it whole; a longer one
    into full blocks of ``max_block_minutes`` with a break between them. Only when that does not fit
    before the deadline is it cut into smaller pieces, none shorter than ``min_block_minutes``, back
    to back where need be.
    """
    step = dt.timedelta(minutes=config.granularity_minutes)
    zero = dt.timedelta(0)
    total = task.duration
    most = dt.timedelta(minutes=config.max_block_minutes) if config.max_block_minutes else total
    least = min(dt.timedelta(minutes=config.min_block_minutes), total)
    earliest = max(window_start, task.not_before.astimezone(UTC)) if task.not_before else window_start
    latest = task.deadline.astimezone(UTC) if task.deadline else None

    def window(a: dt.datetime, b: dt.datetime, cursor: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        s = _round_up(max(a, cursor), config.granularity_minutes)
        return s, (b if latest is None else min(b, latest))

    def fill(block_min: dt.timedelta, pause: dt.timedelta) -> tuple[list[Interval], dt.timedelta]:
        """Blocks of at least ``block_min`` (the last may be shorter, never below ``least``), ``pause`` apart."""
        blocks: list[Interval] = []
        left, cursor = total, earliest
        for a, b in free:
            s, e = window(a, b, cursor)
            while left > zero and e - s >= min(block_min, left):
                length = min(left, most, e - s)
                if length < left:
                    length = step * int(length / step)  # partial blocks stay on the grid
                    if left - length < least:  # never leave a remainder too short to be a block
                        length = left - least
                    if length < min(block_min, left) or length < least:
                        break
                blocks.append((s, s + length))
                left -= length
                cursor = s + length + pause
                s = _round_up(cursor, config.granularity_minutes)
            if left <= zero:
                break
        return blocks, left

    # Whole blocks with a short break between them first (the whole task when it fits in one); pieces
    # back to back only when nothing else fits before the deadline.
    for block_min, pause in ((min(total, most), step), (least, zero)):
        blocks, left = fill(block_min, pause)
        if left <= zero:
            break
    if left > zero:
        if latest is not None and latest <= window_start:
            return f"its deadline ({task.deadline:%a %d %b %H:%M}) has already passed"
        hours = total.total_seconds() / 3600
        if latest is not None:
            return (f"needs {hours:g} h before its deadline ({task.deadline:%a %d %b %H:%M}) and there is not "
                    "enough free working time left then")
        return f"needs {hours:g} h and there is not enough free working time in the planning horizon"
    remaining = free
    for s, e in blocks:
        remaining = _subtract(remaining, s, e)
    return blocks, remaining


def _schedule(tasks: Sequence[PlanTask], order: Sequence[int], free: list[Interval], config: PlanConfig,
              window_start: dt.datetime) -> tuple[dict[int, list[Interval]], dict[int, str]]:
    placed: dict[int, list[Interval]] = {}
    failed: dict[int, str] = {}
    for i in order:
        result = _place(tasks[i], free, config, window_start)
        if isinstance(result, str):
            failed[i] = result
        else:
            placed[i], free = result
    return placed, failed


def _quality(tasks: Sequence[PlanTask], placed: dict[int, list[Interval]]) -> tuple[float, ...]:
    fitted = [0.0, 0.0, 0.0]
    for i in placed:
        fitted[PRIORITY_RANK[tasks[i].priority]] += tasks[i].duration.total_seconds()
    finish = sum(max(b for _, b in blocks).timestamp() for blocks in placed.values())
    return (*fitted, -finish)


def schedule(tasks: Sequence[PlanTask], free: list[Interval], config: PlanConfig, window_start: dt.datetime
             ) -> tuple[list[Block], list[Unscheduled]]:
    far = dt.datetime.max.replace(tzinfo=UTC)

    def deadline(i: int) -> dt.datetime:
        d = tasks[i].deadline
        return d.astimezone(UTC) if d else far

    def rank(i: int) -> int:
        return PRIORITY_RANK[tasks[i].priority]

    indices = range(len(tasks))
    orders = [sorted(indices, key=lambda i: (deadline(i), rank(i), i)),
              sorted(indices, key=lambda i: (rank(i), deadline(i), i))]
    results = [_schedule(tasks, order, free, config, window_start) for order in orders]
    placed, failed = max(results, key=lambda r: _quality(tasks, r[0]))
    blocks = [Block(tasks[i], s.astimezone(config.zone()), e.astimezone(config.zone()), n + 1, len(parts))
              for i, parts in placed.items() for n, (s, e) in enumerate(parts)]
    blocks.sort(key=lambda b: b.start)
    return blocks, [Unscheduled(tasks[i], failed[i]) for i in sorted(failed)]


def plan(requests: str | Sequence[PlanTask], calendar: str | Path | bytes | None = None, *,
         config: PlanConfig | None = None, now: dt.datetime | None = None,
         extractor: Literal["rules", "llm"] = "rules", model: str | None = None,
         runtime: Runtime | None = None) -> Plan:
    """Schedule ``requests`` (free text, one task per line, or PlanTask objects) around ``calendar``.

    ``calendar`` is an .ics path or its bytes; ``now`` (default: the current time) is when planning starts.
    ``extractor="llm"`` lets a chat model (``model``, default: chat_model setting) fill in what the
    rules did not find in each request.
    """
    cfg = config or PlanConfig()
    tz = cfg.zone()
    start_local = (now or dt.datetime.now(tz))
    if start_local.tzinfo is None:
        start_local = start_local.replace(tzinfo=tz)
    window_start = _round_up(start_local.astimezone(UTC), cfg.granularity_minutes)
    window_end = window_start + dt.timedelta(days=cfg.horizon_days)
    work = cfg.workday()
    if isinstance(requests, str):
        tasks = parse_requests(requests, now=start_local, tz=tz, work=work,
                               default_duration=dt.timedelta(minutes=cfg.default_duration_minutes))
        if extractor == "llm":
            from plait.models.base import TextGenerator

            rt = runtime or get_runtime()
            generator = rt.model(model or rt.settings.chat_model, TextGenerator)
            tasks = [refine_with_llm(t, generator, now=start_local, tz=tz, work=work) for t in tasks]
        elif extractor != "rules":
            raise InputError(f"unknown extractor '{extractor}'; use rules or llm")
    else:
        tasks = list(requests)
        if not tasks:
            raise InputError("no tasks to plan")
    for task in tasks:
        if task.duration <= dt.timedelta(0):
            raise InputError(f"task '{task.title}' has no duration; give one, e.g. '45 min'")
    cal = read_calendar(calendar, window_start, window_end, tz=tz) if calendar is not None else CalendarData()
    free = free_time(cfg, window_start, window_end, cal.events)
    blocks, unscheduled = schedule(tasks, free, cfg, window_start)
    busy = [e for e in cal.events if e.end > window_start and e.start < window_end]
    return Plan(tasks=tasks, blocks=blocks, unscheduled=unscheduled, busy=busy, problems=cal.problems,
                start=window_start.astimezone(tz), end=window_end.astimezone(tz), timezone=tz, config=cfg)


# --- the task -----------------------------------------------------------------------------------------

class PlanRequest(TaskRequest):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS,
                      description="the tasks in plain text, one per line, e.g. 'write the report, 2h, by Friday'")
    calendar: str | None = Field(None, max_length=MAX_TEXT_CHARS,
                                 description="the person's calendar: the text of an .ics file")
    config: PlanConfig = Field(default_factory=PlanConfig, description="working hours and preferences")
    now: dt.datetime | None = Field(None, description="plan as if it were this time (default: now)")
    extractor: Literal["rules", "llm"] = Field("rules", description="llm: the chat model fills in what the "
                                               "rules miss")
    model: str | None = Field(None, description="chat model for the llm extractor")


def _run(request: PlanRequest, ctx: TaskContext) -> Plan:
    calendar = request.calendar.encode("utf-8") if request.calendar is not None else None
    return plan(request.text, calendar, config=request.config, now=request.now, extractor=request.extractor,
                model=request.model, runtime=ctx.runtime)


def _json(result: Plan) -> dict[str, Any]:
    return {**result.as_dict(), "ics": result.to_ics().decode("utf-8")}


TASK = Task(
    name="plan", summary="Propose a schedule for tasks written in plain text in a calendar's free time",
    request=PlanRequest, result=Plan, response=dict[str, Any], serialize=_json, run=_run,
    models=lambda request, settings: [request.model or settings.chat_model] if request.extractor == "llm" else [],
    cacheable=lambda request: request.now is not None,  # "now" moves: only a fixed start repeats
)
