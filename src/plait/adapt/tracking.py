"""Every training run recorded: in SQLite (the record plait reads back) and as TensorBoard event files.

A run row is written when training starts (status ``running``) and closed when it ends: ``completed``
with its final metrics and the catalog entry it produced, ``failed`` with the error, or ``interrupted``
(Ctrl-C). Metrics per epoch go to ``adapt_run_metrics`` and to ``$PLAIT_HOME/runs/<id>/tensorboard``
(``tensorboard --logdir ~/.plait/runs``). Plots are drawn from the database by :mod:`plait.adapt.plots`.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from plait.errors import InputError
from plait.store import Store


def hardware() -> dict[str, Any]:
    """What the run ran on: enough to compare durations across machines."""
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    if hasattr(os, "getloadavg"):
        info["load_1min_at_start"] = round(os.getloadavg()[0], 2)
    import importlib.metadata

    for dist in ("torch", "transformers", "peft", "scikit-learn"):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return info


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


class RunTracker:
    """One run's record. Use as a context manager: an exception closes the run as failed or interrupted."""

    def __init__(self, store: Store, runs_dir: Path, *, name: str, task: str, method: str, data_hash: str,
                 data_source: str, params: dict[str, Any], tensorboard: bool = True) -> None:
        self.store = store
        self.id = new_run_id()
        self.dir = runs_dir / self.id
        self.name, self.task, self.method = name, task, method
        self.params = params
        self._writer: Any = None
        self._tensorboard = tensorboard
        self._start = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO adapt_runs (id, name, task, method, status, data_hash, data_source, params, hardware,"
                " run_dir) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (self.id, name, task, method, data_hash, data_source, json.dumps(params, sort_keys=True),
                 json.dumps(hardware()), str(self.dir)))

    @property
    def writer(self) -> Any:
        if self._writer is None and self._tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # TensorBoard not installed: the SQLite record is still complete
                self._tensorboard = False
                return None
            self._writer = SummaryWriter(log_dir=str(self.dir / "tensorboard"))
            self._writer.add_text("params", "```\n" + json.dumps(self.params, indent=2) + "\n```")
        return self._writer

    def log(self, epoch: int, split: str, metrics: dict[str, float]) -> None:
        rows = [(self.id, epoch, split, key, float(value)) for key, value in metrics.items()
                if value is not None and value == value]  # NaN is not a metric
        with self.store.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO adapt_run_metrics VALUES (?, ?, ?, ?, ?)", rows)
        if self.writer is not None:
            for _, _, _, key, value in rows:
                self.writer.add_scalar(f"{split}/{key}", value, epoch)
            self.writer.flush()

    def finish(self, status: str, *, metrics: dict[str, Any] | None = None, model: str | None = None,
               error: str | None = None) -> None:
        duration = time.monotonic() - self._start
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE adapt_runs SET status = ?, metrics = ?, model = ?, error = ?, finished_at = datetime('now'),"
                " duration_s = ? WHERE id = ?",
                (status, json.dumps(metrics) if metrics is not None else None, model, error, duration, self.id))
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> RunTracker:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            return
        if isinstance(exc, KeyboardInterrupt):
            self.finish("interrupted", error="interrupted (Ctrl-C); nothing was registered")
        else:
            self.finish("failed", error=f"{type(exc).__name__}: {exc}"[:2000])


# Reading runs back --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    task: str
    method: str
    status: str
    data_hash: str
    data_source: str | None
    params: dict[str, Any]
    hardware: dict[str, Any]
    metrics: dict[str, Any] | None
    model: str | None
    run_dir: str
    error: str | None
    started_at: str
    finished_at: str | None
    duration_s: float | None

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _record(row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"], name=row["name"], task=row["task"], method=row["method"], status=row["status"],
        data_hash=row["data_hash"], data_source=row["data_source"], params=json.loads(row["params"]),
        hardware=json.loads(row["hardware"]), metrics=json.loads(row["metrics"]) if row["metrics"] else None,
        model=row["model"], run_dir=row["run_dir"], error=row["error"], started_at=row["started_at"],
        finished_at=row["finished_at"], duration_s=row["duration_s"])


def list_runs(store: Store, *, name: str | None = None, limit: int = 50) -> list[RunRecord]:
    if name:
        rows = store.query("SELECT * FROM adapt_runs WHERE name = ? ORDER BY id DESC LIMIT ?", (name, limit))
    else:
        rows = store.query("SELECT * FROM adapt_runs ORDER BY id DESC LIMIT ?", (limit,))
    return [_record(r) for r in rows]


def get_run(store: Store, run_id: str) -> RunRecord:
    """A run by id, or by a unique start of its id, or by the model it produced (triage@2)."""
    rows = store.query("SELECT * FROM adapt_runs WHERE id = ? OR model = ?", (run_id, run_id))
    if not rows:
        escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = store.query("SELECT * FROM adapt_runs WHERE id LIKE ? ESCAPE '\\' ORDER BY id", (escaped + "%",))
    if not rows:
        raise InputError(f"no training run '{run_id}'; see `plait runs list`")
    if len(rows) > 1:
        raise InputError(f"'{run_id}' matches {len(rows)} runs ({', '.join(r['id'] for r in rows[:5])}); "
                         "give more of the id")
    return _record(rows[0])


def epoch_metrics(store: Store, run_id: str) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{split: {key: [(epoch, value), …]}} in epoch order."""
    out: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for row in store.query("SELECT epoch, split, key, value FROM adapt_run_metrics WHERE run_id = ? "
                           "ORDER BY epoch", (run_id,)):
        out.setdefault(row["split"], {}).setdefault(row["key"], []).append((row["epoch"], row["value"]))
    return out


def compare_runs(store: Store, run_ids: list[str]) -> dict[str, Any]:
    """Side by side: the parameters that differ and every final metric, for two or more runs."""
    if len(run_ids) < 2:
        raise InputError("give two or more run ids to compare")
    runs = [get_run(store, r) for r in run_ids]
    keys = sorted({k for r in runs for k in r.params})
    differing = {k: [r.params.get(k) for r in runs] for k in keys
                 if len({json.dumps(r.params.get(k), sort_keys=True) for r in runs}) > 1}
    metric_keys = sorted({k for r in runs for k, v in (r.metrics or {}).items() if isinstance(v, (int, float))})
    metrics = {k: [(r.metrics or {}).get(k) for r in runs] for k in metric_keys}
    return {"runs": [r.id for r in runs], "models": [r.model for r in runs], "methods": [r.method for r in runs],
            "same_data": len({r.data_hash for r in runs}) == 1, "params": differing, "metrics": metrics,
            "duration_s": [r.duration_s for r in runs]}
