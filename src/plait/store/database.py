"""One SQLite database per PLAIT_HOME, safe to share between processes.

WAL lets readers run beside one writer; a busy timeout makes a second writer wait instead of failing
with "database is locked"; writes go through :meth:`Store.transaction`, which takes the write lock up
front (``BEGIN IMMEDIATE``) so a read-then-write transaction cannot deadlock against another process.
Connections are per thread, because a sqlite3 connection must not be shared across threads.

Durability, decided per kind of write (a power cut loses the tail of the WAL that was not yet synced):

- ``synchronous = NORMAL`` by default: a commit reaches the disk at the next checkpoint. A power cut can
  lose the last commits, never corrupt the database. That is right for what can be done again: index
  rows (the next ``plait index add`` re-reads files whose record is gone, by content hash; the vector
  index file is saved only after a checkpoint, so it is never ahead of them), a workflow's items, step
  outputs and cursors (steps are re-run, triggers re-read; keys make items unique).
- ``transaction(durable=True)`` commits with ``synchronous = FULL``: the WAL is synced before COMMIT
  returns, and with it every earlier commit. The workflow ledger (``workflow_effects``) rows of effects
  that leave the machine (a webhook POST, a mail sent by SMTP) are written this way: a ledger row lost
  after its effect makes the effect happen again, so it must be on disk before the next effect starts. A
  power cut then repeats at most the effect in flight (sent with the same Idempotency-Key or Message-ID).
  Ledger rows of local effects (files, table rows, digests) are not synced on their own: redoing them
  gives the same file or row. Catalog entries and migrations are written durably too: rare, costly to lose.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from plait.errors import StoreError
from plait.store.failures import store_error

BUSY_TIMEOUT_MS = 30_000


class Store:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for database {self.path} ({exc}); check PLAIT_HOME") from exc
        from plait.store.migrations import migrate

        try:
            migrate(self)
        except sqlite3.Error as exc:
            raise (store_error(exc, self.path) or StoreError(str(exc))) from exc

    @property
    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @staticmethod
    def open_file(path: Path) -> sqlite3.Connection:
        """A raw connection to a database file: the one way plait opens one (backups use it too)."""
        # isolation_level=None: we issue BEGIN/COMMIT ourselves (see transaction()).
        return sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = self.open_file(self.path)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at each checkpoint; safe with WAL
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise (store_error(exc, self.path) or StoreError(f"cannot open database {self.path} ({exc})")) from exc
        return conn

    @contextmanager
    def transaction(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from its first statement.

        ``durable``: the commit is on disk when this returns (see the module's docstring)."""
        conn = self.connection
        if durable:
            conn.execute("PRAGMA synchronous = FULL")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                # SQLite may already have rolled back (a full disk, an I/O error): do not hide that error.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
        finally:
            if durable:
                conn.execute("PRAGMA synchronous = NORMAL")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.connection.execute(sql, params).fetchall()

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
