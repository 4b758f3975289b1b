"""A workflow's durable state in SQLite: its items, each step's state and output per item, the sinks'
ledger, the trigger's cursor, its runs and its lock.

Every change is one short write transaction, so a process killed at any instant leaves a consistent
record: items the trigger produced are recorded together with the cursor that follows them; a step's
output and (for a sink) its ledger row are written together. On the next run, steps left ``running`` by
a dead process run again, and steps already ``done`` are not repeated.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from plait.processes import pid_alive
from plait.store import Store
from plait.workflows.clock import Clock
from plait.workflows.errors import WorkflowBusy

log = logging.getLogger("plait.workflows")

# A lock whose holder has not written a heartbeat for this long is taken over even if the pid is alive (the
# pid may have been reused after a crash); a holder on another host is judged by its heartbeat alone. A run
# writes one every HEARTBEAT_SECONDS from its own thread (:class:`Heartbeat`), however long a step takes.
STALE_LOCK_SECONDS = 120.0
HEARTBEAT_SECONDS = 30.0
ITEM_STATES = ("pending", "running", "done", "failed", "skipped")


def lock_held(row: Any, *, host: str, now: float) -> bool:
    """Whether the process that took a workflow lock (a ``workflow_locks`` row) still runs it: its heartbeat
    is fresh and, on this host, its pid lives. A process on another host (a home on a shared disk) cannot be
    asked whether it lives: a fresh heartbeat says it does."""
    fresh = now - row["heartbeat_at"] <= STALE_LOCK_SECONDS
    return fresh and (row["host"] != host or pid_alive(row["pid"]))


@dataclass(frozen=True)
class ItemRow:
    id: int
    key: str
    data: dict[str, Any]
    state: str
    attempts: int
    error: str | None
    at: float | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class StepRecord:
    step: str
    state: str  # running | done | skipped | failed
    attempts: int
    output: Any
    error: str | None
    spec_hash: str


@dataclass(frozen=True)
class RunRow:
    id: int
    kind: str
    status: str
    pid: int
    started_at: float
    finished_at: float | None
    items_added: int
    items_done: int
    items_failed: int
    error: str | None


@dataclass(frozen=True)
class Effect:
    item_key: str
    step: str
    sink: str
    detail: Any
    created_at: float



def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class WorkflowState:
    def __init__(self, store: Store, workflow: str, clock: Clock | None = None) -> None:
        self.store, self.workflow, self.clock = store, workflow, clock or Clock()
        self.host = socket.gethostname()

    # -- lock and runs -------------------------------------------------------------------------

    def start_run(self, kind: str) -> int:
        """Take the workflow's lock and open a run; WorkflowBusy if a live process holds it."""
        now, pid = self.clock.now(), os.getpid()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT * FROM workflow_locks WHERE workflow = ?", (self.workflow,)).fetchone()
            if row is not None:
                same_host = row["host"] == self.host
                if same_host and row["pid"] == pid and now - row["heartbeat_at"] <= STALE_LOCK_SECONDS:
                    raise WorkflowBusy(f"workflow '{self.workflow}' is already running in this process")
                if lock_held(row, host=self.host, now=now):
                    where = "" if same_host else f" on {row['host']}"
                    raise WorkflowBusy(f"workflow '{self.workflow}' is already running (pid {row['pid']}{where}, "
                                       f"run {row['run_id']}); stop that process first, or wait for it to finish")
                conn.execute("UPDATE workflow_runs SET status = 'interrupted', finished_at = ? "
                             "WHERE id = ? AND status = 'running'", (now, row["run_id"]))
            cur = conn.execute(
                "INSERT INTO workflow_runs (workflow, kind, status, pid, host, started_at, heartbeat_at) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?)", (self.workflow, kind, pid, self.host, now, now))
            run_id = int(cur.lastrowid or 0)
            conn.execute("INSERT OR REPLACE INTO workflow_locks VALUES (?, ?, ?, ?, ?)",
                         (self.workflow, run_id, pid, self.host, now))
            # Whatever a dead run left running goes back to pending (its steps keep their attempt counts).
            conn.execute("UPDATE workflow_items SET state = 'pending', updated_at = ? "
                         "WHERE workflow = ? AND state = 'running'", (now, self.workflow))
            # Older runs that never finished died with their process.
            conn.execute("UPDATE workflow_runs SET status = 'interrupted' WHERE workflow = ? AND status = "
                         "'running' AND id != ?", (self.workflow, run_id))
        return run_id

    def heartbeat(self, run_id: int, added: int = 0, done: int = 0, failed: int = 0) -> None:
        now = self.clock.now()
        with self.store.transaction() as conn:
            conn.execute("UPDATE workflow_locks SET heartbeat_at = ? WHERE workflow = ? AND run_id = ?",
                         (now, self.workflow, run_id))
            conn.execute("UPDATE workflow_runs SET heartbeat_at = ?, items_added = items_added + ?, "
                         "items_done = items_done + ?, items_failed = items_failed + ? WHERE id = ?",
                         (now, added, done, failed, run_id))

    def keep_alive(self, run_id: int) -> Heartbeat:
        """Write the run's heartbeat from a thread until :meth:`Heartbeat.stop` (the run ends)."""
        return Heartbeat(self, run_id, HEARTBEAT_SECONDS).start()

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        now = self.clock.now()
        with self.store.transaction() as conn:
            conn.execute("UPDATE workflow_runs SET status = ?, finished_at = ?, heartbeat_at = ?, error = ? "
                         "WHERE id = ?", (status, now, now, error, run_id))
            conn.execute("DELETE FROM workflow_locks WHERE workflow = ? AND run_id = ?", (self.workflow, run_id))

    def runs(self, limit: int = 20) -> list[RunRow]:
        rows = self.store.query("SELECT * FROM workflow_runs WHERE workflow = ? ORDER BY id DESC LIMIT ?",
                                (self.workflow, limit))
        return [RunRow(r["id"], r["kind"], r["status"], r["pid"], r["started_at"], r["finished_at"],
                       r["items_added"], r["items_done"], r["items_failed"], r["error"]) for r in rows]

    def running(self) -> dict[str, Any] | None:
        """The live run holding the lock, if any: {run_id, pid, heartbeat_at}."""
        row = self.store.query("SELECT * FROM workflow_locks WHERE workflow = ?", (self.workflow,))
        return dict(row[0]) if row else None

    # -- intake --------------------------------------------------------------------------------

    def known(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), 500):
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.store.query(f"SELECT key FROM workflow_items WHERE workflow = ? AND key IN ({marks})",
                                    (self.workflow, *chunk))
            found.update(r[0] for r in rows)
        return found

    def add_items(self, items: Iterable[tuple[str, dict[str, Any], float | None]], *, cursor: dict[str, Any] | None,
                  trigger: str, state: str = "pending", run_id: int | None = None) -> list[str]:
        """Record new items (keys already known are ignored) and, in the same transaction, the cursor."""
        now = self.clock.now()
        added = []
        with self.store.transaction() as conn:
            for key, data, at in items:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO workflow_items (workflow, key, data, at, state, run_id, created_at, "
                    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (self.workflow, key, _dumps(data), at, state, run_id, now, now))
                if cur.rowcount:
                    added.append(key)
            if cursor is not None:
                conn.execute("INSERT OR REPLACE INTO workflow_cursors VALUES (?, ?, ?, ?)",
                             (self.workflow, trigger, _dumps(cursor), now))
        return added

    def submit(self, data: dict[str, Any], key: str | None = None, at: float | None = None) -> str:
        """Record one item given by hand (`plait run --item`, the /run route), whatever the workflow's
        trigger; returns its key, ``manual:`` and a random id unless one is given (a key given twice is
        one item)."""
        import uuid

        from plait.workflows.steps import to_jsonable

        key = key or f"manual:{uuid.uuid4().hex}"
        # No cursor is written: the trigger's place in its source does not move.
        self.add_items([(key, to_jsonable(data), at)], cursor=None, trigger="manual")
        return key

    def cursor(self, trigger: str) -> dict[str, Any] | None:
        rows = self.store.query("SELECT trigger, cursor FROM workflow_cursors WHERE workflow = ?", (self.workflow,))
        if not rows or rows[0]["trigger"] != trigger:
            return None  # never run, or the trigger's type changed: start afresh
        value = json.loads(rows[0]["cursor"])
        return value if isinstance(value, dict) else None

    def unskip(self, since: float | None = None) -> int:
        """Backfill: items recorded as already there (``start: now``) become pending."""
        sql = "UPDATE workflow_items SET state = 'pending', updated_at = ? WHERE workflow = ? AND state = 'skipped'"
        params: tuple[Any, ...] = (self.clock.now(), self.workflow)
        if since is not None:
            sql += " AND (at IS NULL OR at >= ?)"
            params += (since,)
        with self.store.transaction() as conn:
            return conn.execute(sql, params).rowcount

    # -- processing ----------------------------------------------------------------------------

    def claim(self, limit: int, run_id: int) -> list[ItemRow]:
        """Up to ``limit`` pending items that are due, oldest first, marked running."""
        now = self.clock.now()
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM workflow_items WHERE workflow = ? AND state = 'pending' AND "
                "(next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?",
                (self.workflow, now, limit)).fetchall()
            conn.executemany("UPDATE workflow_items SET state = 'running', run_id = ?, updated_at = ? WHERE id = ?",
                             [(run_id, now, r["id"]) for r in rows])
        return [self._item(r, "running") for r in rows]

    @staticmethod
    def _item(r: Any, state: str | None = None) -> ItemRow:
        return ItemRow(r["id"], r["key"], json.loads(r["data"]), state or r["state"], r["attempts"], r["error"],
                       r["at"], r["created_at"], r["updated_at"])

    def next_due(self) -> float | None:
        rows = self.store.query("SELECT MIN(COALESCE(next_attempt_at, 0)) FROM workflow_items WHERE workflow = ? "
                                "AND state = 'pending'", (self.workflow,))
        value = rows[0][0] if rows else None
        return None if value is None else float(value)

    def steps(self, item_id: int) -> dict[str, StepRecord]:
        rows = self.store.query("SELECT * FROM workflow_steps WHERE item_id = ?", (item_id,))
        return {r["step"]: StepRecord(r["step"], r["state"], r["attempts"],
                                      json.loads(r["output"]) if r["output"] is not None else None, r["error"],
                                      r["spec_hash"]) for r in rows}

    def step_started(self, item_id: int, step: str, spec_hash: str) -> int:
        """Mark a step running and count the attempt; returns the attempt number (1-based)."""
        now = self.clock.now()
        with self.store.transaction() as conn:
            row = conn.execute("SELECT attempts, spec_hash FROM workflow_steps WHERE item_id = ? AND step = ?",
                               (item_id, step)).fetchone()
            # An edited step starts counting again.
            attempts = (row["attempts"] if row and row["spec_hash"] == spec_hash else 0) + 1
            conn.execute(
                "INSERT OR REPLACE INTO workflow_steps (item_id, step, state, attempts, output, error, spec_hash, "
                "started_at) VALUES (?, ?, 'running', ?, NULL, NULL, ?, ?)", (item_id, step, attempts, spec_hash, now))
        return attempts

    def step_done(self, item_id: int, step: str, spec_hash: str, output: Any, *, state: str = "done",
                  effect: tuple[str, str, Any, int | None] | None = None, durable: bool = False) -> None:
        """Store a step's output; for a sink, its ledger row (item key, sink, detail, run) in the same write.

        ``durable``: synced to disk before this returns (with every earlier write), for the ledger row of an
        effect that leaves the machine: the next effect must not start while a power cut could still erase
        the record of this one."""
        now = self.clock.now()
        with self.store.transaction(durable=durable) as conn:
            conn.execute(
                "INSERT INTO workflow_steps (item_id, step, state, attempts, output, spec_hash, started_at, "
                "finished_at) VALUES (?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (item_id, step) DO UPDATE SET "
                "state = excluded.state, output = excluded.output, error = NULL, spec_hash = excluded.spec_hash, "
                "finished_at = excluded.finished_at",
                (item_id, step, state, _dumps(output), spec_hash, now, now))
            if effect is not None:
                item_key, sink, detail, run_id = effect
                conn.execute("INSERT OR IGNORE INTO workflow_effects VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (self.workflow, item_key, step, sink, _dumps(detail), run_id, now))

    def step_failed(self, item_id: int, step: str, error: str) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE workflow_steps SET state = 'failed', error = ?, finished_at = ? "
                         "WHERE item_id = ? AND step = ?", (error, self.clock.now(), item_id, step))

    def effect(self, item_key: str, step: str) -> Effect | None:
        rows = self.store.query("SELECT * FROM workflow_effects WHERE workflow = ? AND item_key = ? AND step = ?",
                                (self.workflow, item_key, step))
        if not rows:
            return None
        r = rows[0]
        return Effect(r["item_key"], r["step"], r["sink"], json.loads(r["detail"]) if r["detail"] else None,
                      r["created_at"])

    def item_done(self, item_id: int) -> None:
        self._set_item(item_id, "done", None, None, count_attempt=True)

    def item_failed(self, item_id: int, error: str) -> None:
        self._set_item(item_id, "failed", error, None, count_attempt=True)

    def item_retry(self, item_id: int, error: str, at: float) -> None:
        self._set_item(item_id, "pending", error, at, count_attempt=True)

    def item_release(self, item_id: int) -> None:
        """Back to pending without counting an attempt (the run was asked to stop)."""
        self._set_item(item_id, "pending", None, None, count_attempt=False)

    def _set_item(self, item_id: int, state: str, error: str | None, next_at: float | None, *,
                  count_attempt: bool) -> None:
        with self.store.transaction() as conn:
            conn.execute("UPDATE workflow_items SET state = ?, error = ?, next_attempt_at = ?, updated_at = ?, "
                         "attempts = attempts + ? WHERE id = ?",
                         (state, error, next_at, self.clock.now(), 1 if count_attempt else 0, item_id))

    # -- reading and retrying ------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        rows = self.store.query("SELECT state, COUNT(*) FROM workflow_items WHERE workflow = ? GROUP BY state",
                                (self.workflow,))
        out = dict.fromkeys(ITEM_STATES, 0)
        out.update({r[0]: r[1] for r in rows})
        return out

    def items(self, state: str | None = None, limit: int = 100) -> list[ItemRow]:
        sql = "SELECT * FROM workflow_items WHERE workflow = ?"
        params: tuple[Any, ...] = (self.workflow,)
        if state:
            sql += " AND state = ?"
            params += (state,)
        rows = self.store.query(sql + " ORDER BY id LIMIT ?", (*params, limit))
        return [self._item(r) for r in rows]

    def effects(self, limit: int = 1000) -> list[Effect]:
        rows = self.store.query("SELECT * FROM workflow_effects WHERE workflow = ? ORDER BY created_at LIMIT ?",
                                (self.workflow, limit))
        return [Effect(r["item_key"], r["step"], r["sink"], json.loads(r["detail"]) if r["detail"] else None,
                       r["created_at"]) for r in rows]

    def effect_counts(self) -> dict[str, int]:
        rows = self.store.query("SELECT step, COUNT(*) FROM workflow_effects WHERE workflow = ? GROUP BY step",
                                (self.workflow,))
        return {r[0]: r[1] for r in rows}

    def retry(self, keys: Sequence[str] | None = None) -> int:
        """Failed items (all, or these keys) go back to pending with fresh attempt counts."""
        now = self.clock.now()
        sql = "SELECT id FROM workflow_items WHERE workflow = ? AND state = 'failed'"
        params: tuple[Any, ...] = (self.workflow,)
        if keys:
            sql += f" AND key IN ({','.join('?' * len(keys))})"
            params += tuple(keys)
        with self.store.transaction() as conn:
            ids = [r[0] for r in conn.execute(sql, params).fetchall()]
            conn.executemany("UPDATE workflow_items SET state = 'pending', error = NULL, next_attempt_at = NULL, "
                             "attempts = 0, updated_at = ? WHERE id = ?", [(now, i) for i in ids])
            conn.executemany("DELETE FROM workflow_steps WHERE item_id = ? AND state IN ('failed', 'running')",
                             [(i,) for i in ids])
        return len(ids)


class Heartbeat:
    """A run's heartbeat, written every HEARTBEAT_SECONDS from its own thread: a batch of slow model steps
    or a long mailbox scan must not let the lock look abandoned to another process, which would take it
    over and process the same items again."""

    def __init__(self, state: WorkflowState, run_id: int, every: float) -> None:
        self._state, self._run_id, self._every = state, run_id, every
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"plait-heartbeat-{state.workflow}")

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stopped.wait(self._every):
            try:
                self._state.heartbeat(self._run_id)
            except sqlite3.Error as exc:  # a busy or full disk: the run reports it; the next beat tries again
                log.warning("workflow %s: could not write the heartbeat of run %s: %s", self._state.workflow,
                            self._run_id, exc)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def workflow_names(store: Store) -> list[str]:
    """Every workflow the database has a record of."""
    rows = store.query("SELECT workflow FROM workflow_items UNION SELECT workflow FROM workflow_runs ORDER BY 1")
    return [r[0] for r in rows]
