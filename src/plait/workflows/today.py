"""What the workflows made for the person's day: the Today view of the web page.

Digest and calendar sinks gather one entry per item into a file per period (a day, a week) or per
calendar; those entries are the structured form of what a person reads. Today is, for each such sink of
each workflow, its latest period's entries (newest first), with the item each came from; proposals of a
calendar sink (meetings planned from mail) can be accepted, which writes the event into the workflow's
``accepted.ics`` beside them, or declined, which sets them aside.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from plait.errors import InputError
from plait.store import Store

Decision = Literal["accept", "decline"]
ACCEPTED_FILE = "accepted.ics"


@dataclass
class Section:
    workflow: str
    sink: str  # the sink step's id
    kind: str  # digest | mail-digest | ics: how the page shows the entries (a mail digest by its threads)
    target: str  # the period (2026-12-03) or the calendar file the entries belong to
    entries: list[dict[str, Any]] = field(default_factory=list)


def today(store: Store, kinds: dict[tuple[str, str], str], *, limit: int = 200) -> list[Section]:
    """For each (workflow, sink) in ``kinds`` (→ "digest", "ics"…), its latest target's entries."""
    decisions = {(r[0], r[1], r[2]): r[3] for r in store.query(
        "SELECT workflow, sink, item_key, decision FROM today_decisions")}
    sections = []
    for (workflow, sink), kind in sorted(kinds.items()):
        latest = store.query("SELECT target FROM workflow_entries WHERE workflow = ? AND sink = ? "
                             "ORDER BY at DESC LIMIT 1", (workflow, sink))
        if not latest:
            continue
        target = latest[0][0]
        rows = store.query("SELECT item_key, at, data FROM workflow_entries WHERE workflow = ? AND sink = ? AND "
                           "target = ? ORDER BY at DESC LIMIT ?", (workflow, sink, target, limit))
        section = Section(workflow, sink, kind, target)
        for key, at, data in rows:
            decision = decisions.get((workflow, sink, key))
            section.entries.append({"item_key": key, "at": at, "decision": decision, **json.loads(data)})
        sections.append(section)
    return sections


def decide(store: Store, workflow: str, sink: str, item_key: str, decision: Decision, output: Path) -> Path | None:
    """Record the person's decision on a proposal; accepting rewrites ``accepted.ics`` from every accepted
    proposal of that workflow (so accepting twice, or after a restart, gives the same file)."""
    rows = store.query("SELECT data FROM workflow_entries WHERE workflow = ? AND sink = ? AND item_key = ?",
                       (workflow, sink, item_key))
    if not rows:
        raise InputError(f"no proposal '{item_key}' of {workflow}/{sink}")
    with store.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO today_decisions VALUES (?, ?, ?, ?, ?)",
                     (workflow, sink, item_key, decision, time.time()))
    return _write_accepted(store, workflow, output)


def _write_accepted(store: Store, workflow: str, output: Path) -> Path | None:
    from plait.calendar import Event, write_calendar

    rows = store.query("SELECT e.data FROM workflow_entries e JOIN today_decisions d ON d.workflow = e.workflow "
                       "AND d.sink = e.sink AND d.item_key = e.item_key WHERE e.workflow = ? AND d.decision = "
                       "'accept' ORDER BY e.at", (workflow,))
    path = output / ACCEPTED_FILE
    events = []
    for (raw,) in rows:
        data = json.loads(raw)
        if "start" in data and "end" in data:
            events.append(Event(start=datetime.fromisoformat(data["start"]), end=datetime.fromisoformat(data["end"]),
                                summary=data.get("summary", ""), uid=data.get("uid", ""),
                                description=data.get("description", "")))
    if not events:
        path.unlink(missing_ok=True)
        return None
    from plait.security.storage import write_bytes

    output.mkdir(parents=True, exist_ok=True)
    write_bytes(path, write_calendar(events, name=f"{workflow}: accepted"))  # sealed in an encrypted home
    return path
