"""`plait plan`: schedule tasks written in plain text into the free time of a calendar."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import read_input
from plait.cli.tasks import print_json, run_task
from plait.errors import InputError


def register(app: typer.Typer) -> None:
    app.command()(plan)


def _time(value: str, option: str) -> dt.time:
    try:
        return dt.time.fromisoformat(value.strip().zfill(5) if len(value.strip()) <= 5 else value.strip())
    except ValueError as exc:
        raise typer.BadParameter(f"'{value}' is not a time like 09:00", param_hint=option) from exc


def _break(value: str) -> tuple[dt.time, dt.time]:
    start, sep, end = value.partition("-")
    if not sep:
        raise typer.BadParameter(f"'{value}' is not a break like 12:00-13:00", param_hint="--break")
    return _time(start, "--break"), _time(end, "--break")


def _now(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"'{value}' is not a date and time like 2026-03-02T08:00",
                                 param_hint="--now") from exc


def plan(
    ctx: typer.Context,
    tasks: Annotated[str | None, typer.Argument(help="the tasks, one per line; '-' or nothing reads standard input",
                                                show_default=False)] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="read the tasks from this file")] = None,
    calendar: Annotated[Path | None, typer.Option("--calendar", "-c", help="your calendar as an .ics file")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write the proposed events to this .ics file")] = None,
    ics: Annotated[bool, typer.Option("--ics", help="print the .ics instead of the agenda")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the plan as JSON")] = False,
    start: Annotated[str, typer.Option(help="start of the working day")] = "09:00",
    end: Annotated[str, typer.Option(help="end of the working day")] = "17:00",
    days: Annotated[str, typer.Option(help="working days, e.g. mon-fri or mon,tue,thu")] = "mon-fri",
    breaks: Annotated[list[str] | None, typer.Option("--break", help="a daily break, e.g. 12:00-13:00 (repeatable)")
                      ] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA time zone (default: this machine's)")] = None,
    horizon: Annotated[int, typer.Option(help="days ahead to plan")] = 14,
    buffer: Annotated[int, typer.Option(help="minutes kept free around calendar events")] = 0,
    max_block: Annotated[int, typer.Option(help="split tasks into blocks of at most this many minutes (0: never)")
                         ] = 120,
    default_duration: Annotated[int, typer.Option(help="minutes for a task that gives no duration")] = 60,
    now: Annotated[str | None, typer.Option(help="plan as if it were this time (ISO 8601); default: now")] = None,
    llm: Annotated[bool, typer.Option("--llm", help="let the chat model fill in what the rules miss")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="chat model for --llm")] = None,
) -> None:
    """Propose a schedule: tasks with durations, deadlines and priorities, placed in free working time.

    Example:  plait plan -c work.ics -o plan.ics "write the report, 3h, by Friday, high priority"
    """
    from pydantic import ValidationError

    from plait.readers.text import read_text
    from plait.tasks.plan import PlanConfig

    text = read_input(tasks, file)
    if not text.strip():
        raise InputError("no tasks given: write one task per line, e.g. 'write the report, 2h, by Friday'")
    try:
        config = PlanConfig(timezone=timezone, work_start=_time(start, "--start"), work_end=_time(end, "--end"),
                            work_days=days, breaks=tuple(_break(b) for b in breaks or ()),  # type: ignore[arg-type]
                            horizon_days=horizon, buffer_minutes=buffer, max_block_minutes=max_block,
                            default_duration_minutes=default_duration)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InputError(f"bad planning option{' ' + where if where else ''}: {first['msg']}") from exc
    task, result = run_task(ctx, "plan", {
        "text": text, "calendar": read_text(calendar) if calendar is not None else None, "config": config,
        "now": _now(now), "extractor": "llm" if llm else "rules", "model": model})
    if out is not None:
        try:
            out.write_bytes(result.to_ics())
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or exc}") from exc
        print(f"plait: wrote {len(result.blocks)} event(s) to {out}", file=sys.stderr)
    if as_json:
        print_json(task, result)
    elif ics:
        sys.stdout.write(result.to_ics().decode("utf-8"))
    else:
        sys.stdout.write(result.agenda())
