"""A workflow's status and history, read from the database: what the CLI and server show."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from plait.store import Store
from plait.workflows.state import WorkflowState


@dataclass
class WorkflowStatus:
    name: str
    counts: dict[str, int]  # items by state
    running: dict[str, Any] | None  # the live run: run_id, pid, heartbeat_at
    last_runs: list[dict[str, Any]]
    failed: list[dict[str, Any]]  # key, error, attempts
    effects: dict[str, int]  # sink step → effects done
    file: str | None = None
    enabled: bool | None = None
    problem: str | None = None  # why the file does not load
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(v for k, v in self.counts.items() if k != "skipped")

    @property
    def progress(self) -> float:
        """Share of items finished (done or failed), 0-1."""
        return (self.counts["done"] + self.counts["failed"]) / self.total if self.total else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "progress": round(self.progress, 4)}


def workflow_status(store: Store, name: str, *, failed_limit: int = 50, runs: int = 5) -> WorkflowStatus:
    state = WorkflowState(store, name)
    return WorkflowStatus(
        name=name, counts=state.counts(), running=state.running(),
        last_runs=[asdict(r) for r in state.runs(runs)],
        failed=[{"key": i.key, "error": i.error, "attempts": i.attempts} for i in state.items("failed", failed_limit)],
        effects=state.effect_counts(),
    )
