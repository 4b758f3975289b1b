"""Evaluation runs kept in SQLite (``eval_runs``), so a person sees whether a change helped.

One row per ``plait eval`` run: when, on which collection, the models and settings it ran with, and
its metrics. ``history`` lists them newest first; the JSON form is what ``plait eval history --json``
prints and what the web page shows.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.store import Store


@dataclass(frozen=True)
class EvalRun:
    id: int
    started_at: str  # ISO 8601, local time with offset
    seconds: float
    collection: str | None
    embed_model: str
    chat_model: str
    settings: dict[str, Any]  # what the run used that can change results (passages, thresholds, weights)
    metrics: dict[str, Any]
    sizes: dict[str, int] = field(default_factory=dict)  # documents, chunks, queries, questions

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record(store: Store, run: EvalRun) -> EvalRun:
    with store.transaction() as conn:
        row_id = conn.execute(
            "INSERT INTO eval_runs (started_at, seconds, collection, embed_model, chat_model, settings, metrics, "
            "sizes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (run.started_at, run.seconds, run.collection, run.embed_model, run.chat_model, json.dumps(run.settings),
             json.dumps(run.metrics), json.dumps(run.sizes))).lastrowid
    return EvalRun(int(row_id or 0), run.started_at, run.seconds, run.collection, run.embed_model, run.chat_model,
                   run.settings, run.metrics, run.sizes)


def history(store: Store, *, limit: int = 50) -> list[EvalRun]:
    """The latest runs, newest first."""
    rows = store.query("SELECT id, started_at, seconds, collection, embed_model, chat_model, settings, metrics, "
                       "sizes FROM eval_runs ORDER BY id DESC LIMIT ?", (limit,))
    return [EvalRun(int(r[0]), r[1], float(r[2]), r[3], r[4], r[5], json.loads(r[6]), json.loads(r[7]),
                    json.loads(r[8])) for r in rows]


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
