"""Workflow helpers that are not model tasks, callable as steps like tasks (``task: read``):

- ``read``: a file into text and metadata with plait's readers (folder triggers give paths, not text);
- ``relevance``: how close a text is to a person's interests, by embedding similarity (feed ranking);
- ``free_slot``: the first free time in a calendar at or after a wanted time (meeting proposals).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from plait.errors import InputError
from plait.runtime import Runtime


def read(path: str, *, max_chars: int = 200_000) -> dict[str, Any]:
    """The first document of ``path`` (text capped at ``max_chars``), with its title, kind and metadata."""
    from plait.readers.document import read_document

    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p} no longer exists (moved or deleted after it was seen)")
    doc = read_document(p)
    return {"text": doc.text[:max_chars], "title": doc.title or p.stem, "kind": doc.kind, "source": doc.source,
            "metadata": dict(doc.metadata), "chars": len(doc.text), "truncated": len(doc.text) > max_chars}


def relevance(text: str, interests: str | Sequence[str], *, model: str | None = None,
              runtime: Runtime | None = None) -> dict[str, Any]:
    """Cosine similarity between ``text`` and the closest of ``interests`` (clipped to 0-1), and which one."""
    from plait.tasks.embed import embedder

    topics = [interests] if isinstance(interests, str) else [str(t) for t in interests]
    topics = [t for t in topics if t.strip()]
    if not topics:
        raise InputError("relevance needs at least one interest (a phrase such as 'space exploration')")
    if not text.strip():
        raise InputError("relevance: the text is empty")
    emb = embedder(model, runtime)
    doc = emb.embed_many([text[:8000]], kind="document")[0]
    queries = emb.embed_many(topics, kind="query")
    sims = queries @ doc
    best = int(sims.argmax())
    return {"score": round(max(0.0, min(1.0, float(sims[best]))), 4), "interest": topics[best],
            "scores": {t: round(float(s), 4) for t, s in zip(topics, sims, strict=True)}}


def _zone(name: str | None) -> Any:
    if not name:
        return datetime.now().astimezone().tzinfo or UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InputError(f"unknown time zone '{name}'; use a name such as Europe/Paris") from exc


def _hours(spec: str) -> tuple[time, time]:
    try:
        a, b = spec.split("-")
        start, end = time.fromisoformat(a.strip()), time.fromisoformat(b.strip())
    except ValueError as exc:
        raise InputError(f"working hours '{spec}' should look like 09:00-17:00") from exc
    if end <= start:
        raise InputError(f"working hours '{spec}' end before they start")
    return start, end


def free_slot(after: str | None = None, *, calendar: str, duration_minutes: int = 30, within_days: int = 14,
              hours: str = "09:00-17:00", weekdays_only: bool = True, step_minutes: int = 30,
              timezone: str | None = None, busy: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    """The first slot of ``duration_minutes`` at or after ``after`` (ISO time; default now) that overlaps no
    event of ``calendar`` (an .ics path or URL) nor any of ``busy`` ({start, end}), within working hours.

    Returns {start, end, found, conflicts} where ``conflicts`` are the events that pushed the slot later.
    """
    from plait.workflows.calendars import load_calendar_bytes, parse_events

    if duration_minutes < 1 or step_minutes < 1:
        raise InputError("free_slot: duration_minutes and step_minutes must be at least 1")
    zone = _zone(timezone)
    begin = datetime.fromisoformat(after.replace("Z", "+00:00")) if after else datetime.now(zone)
    if begin.tzinfo is None:
        begin = begin.replace(tzinfo=zone)
    begin = begin.astimezone(zone)
    horizon = begin + timedelta(days=within_days)
    events = parse_events(load_calendar_bytes(calendar, base=Path.cwd()), begin - timedelta(days=1), horizon,
                          zone=zone, source=calendar)
    blocks = [(e.start, e.end, e.summary) for e in events]
    for b in busy:
        blocks.append((datetime.fromisoformat(b["start"]).astimezone(zone),
                       datetime.fromisoformat(b["end"]).astimezone(zone), b.get("summary", "busy")))
    open_at, close_at = _hours(hours)
    length, step = timedelta(minutes=duration_minutes), timedelta(minutes=step_minutes)
    # Round up to the grid so proposals land on :00/:30.
    minutes = begin.hour * 60 + begin.minute
    grid = -(-minutes // step_minutes) * step_minutes
    slot = begin.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=grid)
    conflicts: list[str] = []
    while slot + length <= horizon:
        day_open = slot.replace(hour=open_at.hour, minute=open_at.minute)
        day_close = slot.replace(hour=close_at.hour, minute=close_at.minute)
        if (weekdays_only and slot.weekday() >= 5) or slot + length > day_close:
            slot = (slot + timedelta(days=1)).replace(hour=open_at.hour, minute=open_at.minute)
            continue
        if slot < day_open:
            slot = day_open
            continue
        clash = next(((s, e, what) for s, e, what in blocks if s < slot + length and e > slot), None)
        if clash is None:
            return {"found": True, "start": slot.isoformat(), "end": (slot + length).isoformat(),
                    "conflicts": conflicts}
        if clash[2] not in conflicts:
            conflicts.append(clash[2])
        slot += step
    return {"found": False, "start": None, "end": None, "conflicts": conflicts}
