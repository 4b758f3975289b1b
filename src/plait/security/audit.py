"""The audit log: who (which key) did what, append-only, in the (encrypted) database.

One row per HTTP request (route, status, task, model, bytes in and out, which index passages were read,
what was sent to a remote model server: which server, how many bytes, how many personal details were
redacted first), per request sent to a remote model server from outside an HTTP request (the CLI, the
Python API, workflows), per failed sign-in, and per alert the anomaly detector raised
(:mod:`plait.security.anomaly`). Triggers refuse UPDATE and DELETE on the table, and each row carries a
SHA-256 chained over the one before, so a row changed or removed behind plait's back breaks the chain
(`plait security audit --verify`).

Writing never slows an answer: :meth:`AuditLog.record` queues the row (and runs the detector, which is
in memory), and a background thread writes the queue every half second in one transaction.

Routes and tasks add to the record of the request being answered with :func:`note`; the record travels
to worker threads in a context variable (``ServerContext.run`` copies the context into its workers).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plait.security.anomaly import Alert, AnomalyDetector

if TYPE_CHECKING:
    from plait.store import Store

log = logging.getLogger("plait.security")
FLUSH_SECONDS = 0.5
MAX_PASSAGES = 200  # chunk ids kept per request (a search returns far fewer)


@dataclass
class AuditEvent:
    at: float
    kind: str  # request | egress | auth_failure | alert
    key: str | None = None  # the API key's id; "-" without auth; "webhook:NAME"; "addr:IP" for an alert on failures
    key_name: str | None = None
    client: str | None = None
    method: str | None = None
    route: str | None = None
    status: int | None = None
    task: str | None = None
    model: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    ms: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


_COLUMNS = ("at", "kind", "key", "key_name", "client", "method", "route", "status", "task", "model", "bytes_in",
            "bytes_out", "ms", "detail")
_current: contextvars.ContextVar[AuditEvent | None] = contextvars.ContextVar("plait_audit", default=None)


def note(**fields: Any) -> None:
    """Add to the audit record of the request being answered (no-op outside one): task=, model=, or detail."""
    event = _current.get()
    if event is None:
        return
    for name, value in fields.items():
        if name in ("task", "model") and value:
            setattr(event, name, str(value))
        elif value is not None:
            event.detail[name] = value


def note_passages(chunk_ids: list[int]) -> None:
    """Which index passages the request read."""
    event = _current.get()
    if event is not None and chunk_ids:
        seen = event.detail.setdefault("passages", [])
        seen.extend(int(c) for c in chunk_ids[:max(0, MAX_PASSAGES - len(seen))])


def note_egress(backend: str, model: str, bytes_sent: int, redacted: int,
                record: Callable[[AuditEvent], None] | None = None) -> None:
    """What left the machine for a remote model server.

    Inside an HTTP request it joins that request's row; outside one (the CLI, the Python API, workflows)
    it is a row of its own, ``egress`` by the key ``local``, written by ``record`` (the runtime's, see
    :class:`plait.models.loading.Models`): the owner sees every send, whichever door it went through.
    """
    sent = {"backend": backend, "model": model, "bytes": bytes_sent, "redacted": redacted}
    event = _current.get()
    if event is not None:
        event.detail.setdefault("egress", []).append(sent)
    elif record is not None:
        record(AuditEvent(time.time(), "egress", key="local", key_name="local", model=model, bytes_out=bytes_sent,
                          detail={"egress": [sent]}))


@contextmanager
def recording(event: AuditEvent) -> Iterator[AuditEvent]:
    token = _current.set(event)
    try:
        yield event
    finally:
        _current.reset(token)


def _chain(previous: str, row: tuple[Any, ...]) -> str:
    return hashlib.sha256((previous + json.dumps(row, default=str, separators=(",", ":"))).encode()).hexdigest()


class AuditLog:
    """Queues events and alerts, writes them in the background; reads and verifies the log."""

    def __init__(self, store: Store, *, detector: AnomalyDetector | None = None,
                 on_alert: Callable[[Alert], None] | None = None, background: bool = True) -> None:
        self.store = store
        self.detector = detector if detector is not None else AnomalyDetector()
        self.on_alert = on_alert
        self._queue: list[AuditEvent] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="plait-audit", daemon=True)
            self._thread.start()

    # -- writing --------------------------------------------------------------------------------

    def record(self, event: AuditEvent) -> list[Alert]:
        """Queue ``event``; returns the alerts it raised (queued too, as ``alert`` rows)."""
        alerts = self.detector.observe(
            at=event.at, key=event.key if event.kind == "request" else None, key_name=event.key_name,
            client=event.client, route=event.route, status=event.status or 0, bytes_out=event.bytes_out,
            auth_failed=event.kind == "auth_failure")
        with self._lock:
            self._queue.append(event)
            for alert in alerts:
                self._queue.append(AuditEvent(alert.at, "alert", alert.key, alert.key_name, event.client,
                                              route=event.route, detail=alert.as_dict()))
        for alert in alerts:
            log.warning("security alert: %s", alert.message)
            if self.on_alert is not None:
                self.on_alert(alert)
        if self._thread is None:
            self.flush()
        return alerts

    def flush(self) -> int:
        with self._lock:
            batch, self._queue = self._queue, []
        if not batch:
            return 0
        with self.store.transaction() as conn:
            last = conn.execute("SELECT chain FROM security_audit ORDER BY id DESC LIMIT 1").fetchone()
            previous = last[0] if last else ""
            for event in batch:
                row = tuple(getattr(event, c) if c != "detail" else json.dumps(event.detail, default=str)
                            for c in _COLUMNS)
                previous = _chain(previous, row)
                conn.execute(f"INSERT INTO security_audit ({', '.join(_COLUMNS)}, chain) VALUES "
                             f"({', '.join('?' * len(_COLUMNS))}, ?)", (*row, previous))
        return len(batch)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - a full disk must not take the server down; retried next time
                log.exception("could not write the audit log")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()


def read(store: Store, *, since: float | None = None, key: str | None = None, kinds: tuple[str, ...] = (),
         limit: int = 100) -> list[AuditEvent]:
    """The newest ``limit`` events, newest first, filtered by time, key (id or name) and kind."""
    sql, params = "SELECT * FROM security_audit WHERE 1", list[Any]()
    if since is not None:
        sql += " AND at >= ?"
        params.append(since)
    if key:
        sql += " AND (key = ? OR key_name = ?)"
        params += [key, key]
    if kinds:
        sql += f" AND kind IN ({', '.join('?' * len(kinds))})"
        params += list(kinds)
    rows = store.query(sql + " ORDER BY id DESC LIMIT ?", (*params, limit))
    return [AuditEvent(**{c: (json.loads(r[c]) if c == "detail" and r[c] else r[c]) for c in _COLUMNS},
                       id=r["id"]) for r in rows]


def verify(store: Store) -> tuple[int, int | None]:
    """(rows checked, id of the first row whose chain does not match or None): a changed or removed row shows."""
    previous, count = "", 0
    for r in store.query(f"SELECT id, {', '.join(_COLUMNS)}, chain FROM security_audit ORDER BY id"):
        row = tuple(r[c] for c in _COLUMNS)
        previous = _chain(previous, row)
        count += 1
        if previous != r["chain"]:
            return count, int(r["id"])
    return count, None


def now() -> float:
    return time.time()
