"""Schedules: one item per time a cron expression fires (croniter), in a chosen time zone.

The cursor is the last fire time handled. On the first run nothing fires (the schedule starts now). A
fire time is *on time* when the workflow looks within ``grace_seconds`` of it; older ones were *missed*
(the machine slept, plait was not running), and ``catch_up`` decides what happens to them:

- ``once`` (default): one item for the latest missed time, with ``missed`` = how many were missed;
- ``all``: one item per missed time (at most ``max_catch_up``);
- ``none``: missed times are dropped.

Each item's key is its fire time, so a fire is handled once even if the process dies right after it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from plait.errors import MissingDependency
from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions


def _croniter() -> Any:
    try:
        from croniter import croniter
    except ImportError as exc:
        raise MissingDependency("schedule triggers", extra="workflows", package="croniter") from exc
    return croniter


class ScheduleOptions(TriggerOptions):
    cron: str = Field(description="a cron expression: '0 7 * * *' is every day at 07:00")
    timezone: str | None = Field(None, description="e.g. Europe/Paris (default: this machine's)")
    catch_up: Literal["once", "all", "none"] = "once"
    grace_seconds: float = Field(300.0, ge=0, description="a fire seen this late still counts as on time")
    max_catch_up: int = Field(100, ge=1)

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            croniter = _croniter()
        except MissingDependency:
            return value  # reported when the workflow runs
        if not croniter.is_valid(value):
            raise ValueError(f"'{value}' is not a valid cron expression (five fields: minute hour day month weekday)")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone '{value}'; use a name such as Europe/Paris") from exc
        return value


class ScheduleTrigger(Trigger):
    Options = ScheduleOptions
    options: ScheduleOptions

    def _zone(self) -> Any:
        return ZoneInfo(self.options.timezone) if self.options.timezone else datetime.now().astimezone().tzinfo

    def _fires_between(self, after: float, until: float) -> list[datetime]:
        croniter = _croniter()
        start = datetime.fromtimestamp(after, self._zone())
        it = croniter(self.options.cron, start)
        fires: list[datetime] = []
        while True:
            nxt: datetime = it.get_next(datetime)
            if nxt.timestamp() > until:
                return fires
            fires.append(nxt)
            if len(fires) > 100_000:  # a per-minute schedule missed for months: keep the latest only
                fires = fires[-self.options.max_catch_up:]

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        now = self.env.clock.now()
        last = cursor.get("last")
        if last is None:
            cursor["last"] = now  # a new schedule starts now
            return
        fires = self._fires_between(float(last), now)
        if not fires:
            return
        on_time = [f for f in fires if now - f.timestamp() <= self.options.grace_seconds]
        missed = [f for f in fires if now - f.timestamp() > self.options.grace_seconds]
        chosen: list[tuple[datetime, bool, int]] = []
        if missed and self.options.catch_up == "once":
            chosen.append((missed[-1], True, len(missed)))
        elif missed and self.options.catch_up == "all":
            chosen.extend((f, True, len(missed)) for f in missed[-self.options.max_catch_up:])
        chosen.extend((f, False, 0) for f in on_time)
        if not chosen:
            cursor["last"] = fires[-1].timestamp()
            return
        fired_at = datetime.fromtimestamp(now, UTC).isoformat()
        for i, (when, was_missed, count) in enumerate(chosen):
            # Past the last chosen fire, the cursor covers the dropped ones too.
            cursor["last"] = fires[-1].timestamp() if i == len(chosen) - 1 else when.timestamp()
            yield TriggerItem(f"schedule:{when.isoformat()}", {
                "scheduled_for": when.isoformat(), "fired_at": fired_at, "missed": was_missed,
                "missed_count": count, "cron": self.options.cron, "text": f"scheduled run for {when.isoformat()}",
            }, when.timestamp())

    def next_wait(self, now: float) -> float:
        croniter = _croniter()
        nxt: datetime = croniter(self.options.cron, datetime.fromtimestamp(now, self._zone())).get_next(datetime)
        return max(0.0, nxt.timestamp() - now)
