"""Reading tasks from free text: one task per line (or per ``;``), with its duration, deadline, priority
and earliest start found by rules, dates read by ``dateparser``.

    - write the quarterly report, 3h, by Friday 15:00, high priority
    - call the bank tomorrow (20 min)
    - review Anna's slides for 1.5 hours before March 10
    - tidy the shared drive, low priority

What the rules understand:

- durations: ``90 min``, ``1.5h``, ``1h30``, ``2 hours``, ``half an hour``, ``an hour``, ``a couple of
  hours``, ``half a day``, ``a day`` (a working day), ``2 days``;
- deadlines: ``by``/``before``/``due``/``until``/``no later than``/``deadline`` + a date or time
  (``Friday``, ``March 10``, ``2026-03-10 17:00``, ``tomorrow noon``, ``end of day``, ``end of week``);
  a date without a time means the end of that working day;
- a day: ``on Friday``, ``today``, ``tomorrow`` (done that day); ``after Wednesday``, ``next week``
  (not before);
- priority: ``urgent``, ``asap``, ``important``, ``high priority``, ``p1``, ``!`` → high;
  ``low priority``, ``whenever``, ``someday``, ``if time``, ``nice to have``, ``p3`` → low.

The optional LLM pass (``extractor="llm"``) asks a chat model for the same fields under a JSON schema
and uses its answers only where the rules found nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from plait.errors import InputError, MissingDependency

Priority = Literal["high", "normal", "low"]
PRIORITY_RANK: dict[str, int] = {"high": 0, "normal": 1, "low": 2}


@dataclass(frozen=True)
class PlanTask:
    title: str
    duration: dt.timedelta
    priority: Priority = "normal"
    deadline: dt.datetime | None = None  # aware
    not_before: dt.datetime | None = None  # aware
    text: str = ""  # the request as written
    duration_given: bool = True  # False: the default duration was assumed


@dataclass(frozen=True)
class WorkDay:
    """What the parser needs to know about the person's working day."""

    start: dt.time
    end: dt.time
    days: frozenset[int]  # weekday numbers, Monday = 0

    @property
    def length(self) -> dt.timedelta:
        return dt.datetime.combine(dt.date.min, self.end) - dt.datetime.combine(dt.date.min, self.start)


_BULLET = re.compile(r"^\s*(?:[-*•·]|\d+[.)]|\[[ xX]?\])\s*")
_NUMBER = r"\d+(?:[.,]\d+)?"
_NOT_IN = r"(?<!\bin\s)(?<!within\s)"  # "in 3 days", "within 2 hours": a deadline, not a duration
_DURATIONS: list[tuple[re.Pattern[str], Callable[[re.Match[str], WorkDay], dt.timedelta]]] = [
    (re.compile(rf"{_NOT_IN}\b(?P<h>{_NUMBER})\s*(?:h|hrs?|hours?)\s*"
                rf"(?:(?P<m>\d+)\s*(?:m|mins?|minutes?)?)?(?![\w])", re.I),
     lambda m, w: dt.timedelta(hours=float(m["h"].replace(",", ".")), minutes=int(m["m"] or 0))),
    (re.compile(rf"{_NOT_IN}\b(?P<m>{_NUMBER})\s*(?:m|mins?|minutes?)\b", re.I),
     lambda m, w: dt.timedelta(minutes=float(m["m"].replace(",", ".")))),
    (re.compile(rf"{_NOT_IN}\b(?P<d>{_NUMBER})\s*(?:working\s+|work\s+)?days?\b", re.I),
     lambda m, w: w.length * float(m["d"].replace(",", "."))),
    (re.compile(r"\b(?:a\s+)?quarter\s+(?:of\s+)?an?\s+hour\b", re.I), lambda m, w: dt.timedelta(minutes=15)),
    (re.compile(r"\bhalf\s+an?\s+hour\b", re.I), lambda m, w: dt.timedelta(minutes=30)),
    (re.compile(r"\b(?:an|one)\s+hour\s+and\s+a\s+half\b", re.I), lambda m, w: dt.timedelta(minutes=90)),
    (re.compile(r"\b(?:an|one)\s+hour\b", re.I), lambda m, w: dt.timedelta(hours=1)),
    (re.compile(r"\ba\s+couple\s+(?:of\s+)?hours\b", re.I), lambda m, w: dt.timedelta(hours=2)),
    (re.compile(r"\ba\s+few\s+hours\b", re.I), lambda m, w: dt.timedelta(hours=3)),
    (re.compile(r"\bhalf\s+(?:a\s+)?day\b|\bhalf-day\b", re.I), lambda m, w: w.length / 2),
    (re.compile(r"\b(?:a|one|all|full|the\s+whole)\s+(?:working\s+)?day\b", re.I), lambda m, w: w.length),
]
# Words around a duration that belong to it ("for 2 hours", "takes ~30 min", "(1h)").
_DURATION_LEAD = re.compile(r"(?:\b(?:for|takes?|taking|about|around|approx\.?|roughly|needs?)\s+|~\s*)+$", re.I)

_HIGH = re.compile(r"\b(?:urgent(?:ly)?|asap|a\.s\.a\.p\.?|critical|important|top\s+priority|high\s+priority|"
                   r"priority\s*[:=]?\s*high|p1)\b|!+\s*$", re.I)
_LOW = re.compile(r"\b(?:low\s+priority|priority\s*[:=]?\s*low|whenever|someday|some\s+day|if\s+time(?:\s+allows)?|"
                  r"nice\s+to\s+have|no\s+rush|p3)\b", re.I)
_NORMAL = re.compile(r"\b(?:normal|medium)\s+priority\b|\bpriority\s*[:=]?\s*(?:normal|medium)\b|\bp2\b", re.I)

_DEADLINE = re.compile(r"\b(?:by|before|due(?:\s+(?:on|by|at))?|until|till|no\s+later\s+than|deadline(?:\s+is)?:?)"
                       r"\s+(?P<when>[^,;()]+)", re.I)
_AFTER = re.compile(r"\b(?:after|not\s+before|from|starting)\s+(?P<when>[^,;()]+)", re.I)
_ON = re.compile(r"\b(?:on|this)\s+(?P<when>(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\b(?:\s+\d{1,2}(?:st|nd|rd|th)?)?"
                 r"|\d{4}-\d{2}-\d{2}|\d{1,2}(?:st|nd|rd|th)?\s+[a-z]{3,9}\b"
                 r"|[a-z]{3,9}\s+\d{1,2}(?:st|nd|rd|th)?\b)", re.I)
_DAY_WORD = re.compile(r"\b(?P<when>today|tonight|tomorrow)\b", re.I)
_NEXT_WEEK = re.compile(r"\bnext\s+week\b", re.I)
_END_OF = re.compile(r"^(?:the\s+)?(?:end\s+of\s+(?:the\s+)?(?P<unit>day|week|month)|(?P<abbr>eod|eow|cob))\b", re.I)
_HAS_TIME = re.compile(r"\d{1,2}:\d{2}|\d\s*(?:am|pm)\b|\b(?:noon|midday|midnight)\b|\b\d{1,2}\s*h\b", re.I)
_CONNECTORS = re.compile(r"^(?:and|to|for|with|at|on|by|-|–|—|:|,|;)\s+|\s+(?:and|for|with|at|on|by|-|–|—)$", re.I)


def split_requests(text: str) -> list[str]:
    """One request per non-empty line, bullets and checkboxes removed; one line with ``;`` splits on it."""
    lines = [_BULLET.sub("", line).strip() for line in text.splitlines()]
    items = [line for line in lines if line and not line.startswith("#")]
    if len(items) == 1 and ";" in items[0]:
        items = [part.strip() for part in items[0].split(";") if part.strip()]
    return items


def _dateparser() -> Any:
    try:
        import dateparser
    except ImportError as exc:
        raise MissingDependency("reading dates in task requests", extra="plan", package="dateparser") from exc
    return dateparser


class _Dates:
    """Dates in the person's time zone, relative to ``now``."""

    def __init__(self, now: dt.datetime, tz: dt.tzinfo, work: WorkDay) -> None:
        self.now, self.tz, self.work = now.astimezone(tz), tz, work
        self.parser = _dateparser()

    def _parse(self, phrase: str) -> dt.datetime | None:
        settings = {"PREFER_DATES_FROM": "future", "RELATIVE_BASE": self.now.replace(tzinfo=None),
                    "RETURN_AS_TIMEZONE_AWARE": False}
        value = self.parser.parse(phrase, languages=["en"], settings=settings)
        return value.replace(tzinfo=self.tz) if value is not None else None

    def day_end(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, self.work.end, tzinfo=self.tz)

    def day_start(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, self.work.start, tzinfo=self.tz)

    def find(self, phrase: str) -> tuple[dt.datetime, bool, int] | None:
        """The longest leading part of ``phrase`` that is a date: (value, has a time, characters used)."""
        end_of = _END_OF.match(phrase.strip())
        lead = len(phrase) - len(phrase.lstrip())
        if end_of:
            unit = (end_of["unit"] or {"eod": "day", "cob": "day", "eow": "week"}[end_of["abbr"].lower()]).lower()
            today = self.now.date()
            if unit == "day":
                day = today
            elif unit == "week":
                workdays = sorted(self.work.days) or [4]
                last = workdays[-1]
                day = today + dt.timedelta(days=(last - today.weekday()) % 7)
            else:
                following = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                day = following - dt.timedelta(days=1)
            return self.day_end(day), True, lead + end_of.end()
        words = phrase.split()
        for n in range(min(len(words), 6), 0, -1):
            candidate = " ".join(words[:n]).rstrip(".!?")
            if not re.search(r"\d|[a-z]{3}", candidate, re.I):
                continue
            value = self._parse(candidate)
            if value is not None:
                used = phrase.find(words[n - 1]) + len(words[n - 1])
                return value, bool(_HAS_TIME.search(candidate)) or bool(
                    re.search(r"\bin\s+\d+\s+(?:hours?|minutes?)", candidate, re.I)), used
        return None


def parse_request(text: str, *, now: dt.datetime, tz: dt.tzinfo, work: WorkDay,
                  default_duration: dt.timedelta) -> PlanTask:
    """One task from one line of text."""
    original = text.strip()
    if not original:
        raise InputError("a task request is empty")
    dates = _Dates(now, tz, work)
    rest = original
    spans: list[tuple[int, int]] = []  # parts of the text that are not the title

    def take(start: int, end: int) -> None:
        spans.append((start, end))

    priority: Priority = "normal"
    for pattern, level in ((_HIGH, "high"), (_LOW, "low"), (_NORMAL, "normal")):
        hits = list(pattern.finditer(rest))
        if hits:
            priority = level  # type: ignore[assignment]
            for hit in hits:
                take(hit.start(), hit.end())
            break

    duration: dt.timedelta | None = None
    for pattern, to_duration in _DURATIONS:
        dm = pattern.search(rest)
        if dm and not _overlaps(spans, dm.start(), dm.end()):
            duration = to_duration(dm, work)
            lead = _DURATION_LEAD.search(rest[: dm.start()])
            take(lead.start() if lead else dm.start(), dm.end())
            break

    deadline: dt.datetime | None = None
    not_before: dt.datetime | None = None
    by = _DEADLINE.search(rest)
    if by and not _overlaps(spans, by.start(), by.start("when")):
        when = dates.find(by["when"])
        if when:
            value, has_time, used = when
            deadline = value if has_time else dates.day_end(value.date())
            take(by.start(), by.start("when") + used)
    after = _AFTER.search(rest)
    if after and not _overlaps(spans, after.start(), after.start("when")):
        when = dates.find(after["when"])
        if when:
            value, has_time, used = when
            not_before = value if has_time else dates.day_start(value.date() + dt.timedelta(days=1))
            take(after.start(), after.start("when") + used)
    for pattern in (_ON, _DAY_WORD):
        on = pattern.search(rest)
        if on and not _overlaps(spans, on.start(), on.end()):
            when = dates.find(on["when"])
            if when:
                day = when[0].date()
                not_before = not_before or dates.day_start(day)
                deadline = deadline or dates.day_end(day)
                take(on.start(), on.end())
                break
    next_week = _NEXT_WEEK.search(rest)
    if next_week and not _overlaps(spans, next_week.start(), next_week.end()) and not_before is None:
        today = dates.now.date()
        not_before = dates.day_start(today + dt.timedelta(days=7 - today.weekday()))
        take(next_week.start(), next_week.end())

    title = _title(original, spans) or original
    return PlanTask(title=title, duration=duration or default_duration, priority=priority,
                       deadline=deadline, not_before=not_before, text=original,
                       duration_given=duration is not None)


def _overlaps(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s < end and start < e for s, e in spans)


def _title(text: str, spans: list[tuple[int, int]]) -> str:
    keep = [True] * len(text)
    for start, end in spans:
        for i in range(start, min(end, len(text))):
            keep[i] = False
    title = "".join(ch if k else " " for ch, k in zip(text, keep, strict=True))
    title = re.sub(r"\(\s*\)|\[\s*\]", " ", title)
    title = re.sub(r"\s+([,;:.!?)])", r"\1", title)
    title = re.sub(r"\s{2,}", " ", title).strip(" ,;:-–—!.(")
    previous = None
    while previous != title:  # connectors left dangling by removed phrases
        previous = title
        title = _CONNECTORS.sub("", title).strip(" ,;:-–—!.(")
    return title


def parse_requests(text: str, *, now: dt.datetime, tz: dt.tzinfo, work: WorkDay,
                   default_duration: dt.timedelta) -> list[PlanTask]:
    items = split_requests(text)
    if not items:
        raise InputError("no tasks found: write one task per line, e.g. 'write the report, 2h, by Friday'")
    return [parse_request(item, now=now, tz=tz, work=work, default_duration=default_duration) for item in items]


LLM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "duration_minutes": {"type": "integer"},
        "deadline": {"type": "string"},
        "priority": {"type": "string", "enum": ["high", "normal", "low"]},
    },
    "required": ["title", "duration_minutes", "deadline", "priority"],
    "additionalProperties": False,
}


def refine_with_llm(task: PlanTask, generator: Any, *, now: dt.datetime, tz: dt.tzinfo,
                    work: WorkDay) -> PlanTask:
    """Fill what the rules did not find (duration, deadline, priority) from a chat model's JSON answer.

    The answer is constrained by :data:`LLM_SCHEMA`; values that do not make sense (a duration outside
    5 minutes to 5 days, a deadline that is not a date) are ignored.
    """
    import json

    from plait.models.base import GenerationOptions, Message

    if task.duration_given and task.deadline is not None:
        return task  # nothing left for the model to fill in (priority "normal" is a fine default)
    prompt = (f"Today is {now.astimezone(tz):%A %Y-%m-%d %H:%M}. Task: {task.text}\n"
              "Give the task's title, how many minutes it takes, its deadline (a date, or empty if none) "
              "and its priority (high, normal or low) as JSON.")
    answer = generator.chat([Message("user", prompt)],
                            GenerationOptions(json_schema=LLM_SCHEMA, temperature=0.0, max_tokens=80))
    try:
        data = json.loads(answer.text)
    except ValueError:
        return task
    if not isinstance(data, dict):
        return task
    updates: dict[str, Any] = {}
    minutes = data.get("duration_minutes")
    if not task.duration_given and isinstance(minutes, int) and 5 <= minutes <= 5 * 24 * 60:
        updates["duration"], updates["duration_given"] = dt.timedelta(minutes=minutes), True
    deadline = data.get("deadline")
    if task.deadline is None and isinstance(deadline, str) and deadline.strip():
        found = _Dates(now, tz, work).find(deadline)
        if found and found[0] > now:
            updates["deadline"] = found[0] if found[1] else _Dates(now, tz, work).day_end(found[0].date())
    if task.priority == "normal" and data.get("priority") in ("high", "low"):
        updates["priority"] = data["priority"]
    return replace(task, **updates) if updates else task
