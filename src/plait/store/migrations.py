"""Named, append-only schema migrations.

Each migration is a function registered in order under a unique name; the ``_migrations`` table records
which names have run. Never edit or reorder a released migration: add a new one at the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait.store.database import Store

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(fn: Migration) -> Migration:
    if any(name == fn.__name__ for name, _ in MIGRATIONS):
        raise ValueError(f"duplicate migration name {fn.__name__}")
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def migrate(store: Store) -> list[str]:
    """Apply the migrations not yet applied; returns their names. Safe when processes race to do it."""
    conn = store.connection
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied: list[str] = []
    with store.transaction():  # the write lock serialises concurrent migrators
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        for name, fn in MIGRATIONS:
            if name not in done:
                fn(conn)
                conn.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (name,))
                applied.append(name)
    return applied


@migration
def m001_models(conn: sqlite3.Connection) -> None:
    # User catalog entries; built-ins are resolved from installed packages and never stored.
    conn.execute(
        """CREATE TABLE models (
            name TEXT PRIMARY KEY,
            spec TEXT NOT NULL,          -- the ModelSpec as JSON
            created_at TEXT NOT NULL DEFAULT (datetime('now'))
        )"""
    )


@migration
def m200_serve_api_keys(conn: sqlite3.Connection) -> None:
    # Server API keys. Only a SHA-256 of each secret is kept: secrets are 256-bit random tokens, so a
    # fast hash is enough (no password stretching needed) and a stolen database reveals no usable key.
    conn.execute(
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,              -- short public id, shown by `plait keys list`
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE, -- hex SHA-256 of the secret
            prefix TEXT NOT NULL,             -- first characters of the secret, to recognise it
            scopes TEXT NOT NULL,             -- space-separated: chat tasks index admin
            rate_limit INTEGER,               -- requests per minute; NULL or 0: no limit
            created_at TEXT NOT NULL DEFAULT (datetime('now')),
            last_used_at TEXT,
            revoked_at TEXT
        )"""
    )
