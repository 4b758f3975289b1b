"""The shared part of sinks that gather entries from many items into one file (digest, ics).

``apply`` stores the item's entry in SQLite (keyed by workflow, sink and item, and by the element for a
sink inside a ``map``, which runs once per element of one item: applying twice replaces it) and marks
its file out of date; ``flush`` rewrites each out-of-date file from all its entries. The file is
therefore always a function of the entries, and an item counted once however often it is applied.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

from plait.workflows.context import StepContext
from plait.workflows.sinks import Sink


@dataclass(frozen=True)
class Entry:
    item_key: str
    at: float
    data: dict[str, Any]


def entry_key(ctx: StepContext) -> str:
    """The item's key; inside a ``map`` the step's path too ("words[2].digest"), or each element's entry
    would replace the one before."""
    return ctx.item_key if "[" not in ctx.step_path else f"{ctx.item_key} {ctx.step_path}"


class GatherSink(Sink):
    @abstractmethod
    def entry(self, ctx: StepContext) -> tuple[str, float, dict[str, Any]]:
        """(target, time, entry) for one item: target names the file (or period) it belongs to."""

    @abstractmethod
    def render(self, target: str, entries: list[Entry]) -> list[str]:
        """Write the target's file(s) from all its entries; returns the paths written."""

    def apply(self, ctx: StepContext) -> dict[str, Any]:
        target, at, data = self.entry(ctx)
        env = self.env
        with env.store.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO workflow_entries VALUES (?, ?, ?, ?, ?, ?)",
                         (env.workflow, env.step, target, entry_key(ctx), at, json.dumps(data, default=str)))
            conn.execute("DELETE FROM workflow_renders WHERE workflow = ? AND sink = ? AND target = ?",
                         (env.workflow, env.step, target))
        return {"target": target, "entry": data}

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        target, _, data = self.entry(ctx)
        return {"would_add_to": target, "entry": data}

    def entries(self, target: str) -> list[Entry]:
        rows = self.env.store.query("SELECT item_key, at, data FROM workflow_entries WHERE workflow = ? AND sink = ? "
                                    "AND target = ? ORDER BY at, item_key", (self.env.workflow, self.env.step, target))
        return [Entry(r["item_key"], r["at"], json.loads(r["data"])) for r in rows]

    def flush(self, *, force: bool = False) -> None:
        env = self.env
        stale = env.store.query(
            "SELECT DISTINCT e.target FROM workflow_entries e LEFT JOIN workflow_renders r ON r.workflow = e.workflow "
            "AND r.sink = e.sink AND r.target = e.target WHERE e.workflow = ? AND e.sink = ? AND r.target IS NULL",
            (env.workflow, env.step))
        for row in stale:
            target = row[0]
            self.render(target, self.entries(target))
            with env.store.transaction() as conn:
                conn.execute("INSERT OR REPLACE INTO workflow_renders VALUES (?, ?, ?, ?)",
                             (env.workflow, env.step, target, env.clock.now()))
