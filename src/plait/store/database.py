"""One SQLite database per PLAIT_HOME, safe to share between processes.

WAL lets readers run beside one writer; a busy timeout makes a second writer wait instead of failing
with "database is locked"; writes go through :meth:`Store.transaction`, which takes the write lock up
front (``BEGIN IMMEDIATE``) so a read-then-write transaction cannot deadlock against another process.
Connections are per thread, because a sqlite3 connection must not be shared across threads; those of
threads that have ended are closed when the next one opens.

An encrypted home's database is a SQLCipher 4 file (AES-256 pages with an HMAC each, in the database, its
WAL and its journal alike), opened by :func:`connect` with the home's data key; a plain one is standard
SQLite. Both have the ``sqlite3`` API, so the rest of plait does not know which it has.

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
from typing import Any, Literal

from plait.errors import StoreError
from plait.store.failures import store_error

BUSY_TIMEOUT_MS = 30_000
AUTO: Literal["auto"] = "auto"


def connect(path: Path | str, key: bytes | None = None, *, timeout: float = BUSY_TIMEOUT_MS / 1000,
            readonly: bool = False) -> sqlite3.Connection:
    """A connection to a plait database: SQLCipher with ``key`` (32 raw bytes), plain SQLite without.

    The key is given raw (``x'…'``), so no passphrase stretching runs per connection. The connection is in
    autocommit mode (``isolation_level=None``) with ``sqlite3.Row`` rows. SQLite's online backup API works
    between two connections opened with the same key (``src.backup(connect(dest, key))``).
    """
    uri = f"file:{Path(path).as_posix()}?mode=ro" if readonly else str(path)
    if key is None:
        conn = sqlite3.connect(uri, timeout=timeout, isolation_level=None, check_same_thread=False, uri=readonly)
        conn.row_factory = sqlite3.Row
        return conn
    from plait.security.sqlcipher import open_encrypted

    return open_encrypted(uri, key, timeout=timeout, uri=readonly)


class Store:
    def __init__(self, path: Path, key: bytes | None | Literal["auto"] = AUTO) -> None:
        """The database at ``path``. ``key``: the SQLCipher key; by default the key of the home the database is
        in (:func:`plait.security.keys.database_key`: a new home is encrypted), None for plain SQLite."""
        self.path = Path(path)
        self._local = threading.local()
        self._connections: dict[threading.Thread, sqlite3.Connection] = {}
        self._lock = threading.Lock()
        self._home_lock: Any = None
        try:
            from plait.security.permissions import private_dir, touch_private

            private_dir(self.path.parent)
            if key == AUTO:
                from plait.security.keys import database_key

                key = database_key(self.path)
            touch_private(self.path)  # 0600 from the start; SQLite gives its WAL and shm the same mode
        except OSError as exc:
            raise StoreError(f"cannot create the folder for database {self.path} ({exc}); check PLAIT_HOME") from exc
        self.key: bytes | None = key
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
                self._close_ended()
                self._connections[threading.current_thread()] = conn
        return conn

    def _close_ended(self) -> None:
        """Close the connections of threads that have ended: no one can use them again, and a process that
        starts thread after thread (worker pools, timers) would otherwise keep them all open."""
        for thread in [t for t in self._connections if not t.is_alive()]:
            self._connections.pop(thread).close()

    def _connect(self) -> sqlite3.Connection:
        try:
            if self._home_lock is None:
                from plait.security.homelock import HomeLock

                # Held while this store is open: a key rotation or migration waits for every plait process to end.
                self._home_lock = HomeLock.shared(self.path.parent)
        except OSError as exc:
            raise (store_error(exc, self.path) or StoreError(f"cannot lock plait's home {self.path.parent} ({exc})")) \
                from exc
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (see transaction()).
            conn = connect(self.path, self.key)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at each checkpoint; safe with WAL
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            from plait.security.sqlcipher import wrong_key

            if wrong_key(exc):  # SQLCipher cannot tell a wrong key from damaged pages
                from plait.store.failures import DamagedDatabase

                why = ("the home's key does not open it (was security.json replaced?)" if self.key is not None
                       else "it is encrypted and the home's key file security.json is missing (restore it)")
                raise DamagedDatabase(
                    f"plait's database ({self.path}) cannot be read: it is damaged, or {why}; run `plait doctor` "
                    "to see what can be saved, or `plait restore BACKUP` to go back to a backup") from exc
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
            for conn in self._connections.values():
                conn.close()
            self._connections.clear()
            if self._home_lock is not None:
                self._home_lock.release()
                self._home_lock = None
        self._local = threading.local()
