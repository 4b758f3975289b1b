"""API keys: created, listed, revoked and checked against SQLite, with scopes.

A key is ``plait-`` plus 256 random bits. Only its SHA-256 is stored, so the database never holds a usable
secret; the secret is shown once, when the key is created. Scopes say what a key may call:

- ``chat``   generation and embeddings (the OpenAI- and Ollama-compatible routes)
- ``tasks``  the task routes (/v1/summarize, /v1/classify…)
- ``index``  the personal index (/v1/search, /v1/ask)
- ``admin``  everything, including /metrics

The CLI uses the *local key*: created on the server's first start with every scope and written to
``$PLAIT_HOME/local.key`` readable by its owner only (mode 0600). The web page holds no key: it signs in
with a one-time link and a session cookie (:mod:`plait.web.sessions`).
"""

from __future__ import annotations

import builtins
import hashlib
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from plait.errors import InputError
from plait.store import Store
from plait.tasks.registry import Scope

SCOPES: tuple[Scope, ...] = get_args(Scope)
KEY_PREFIX = "plait-"
LOCAL_KEY_FILE = "local.key"
LOCAL_KEY_NAME = "local"
# The local key is rate-limited too (it was unlimited): 1,000 requests a second is far above what a person's
# tools send (the benchmarks' 32 concurrent clients stay under it) and still bounds a runaway script.
LOCAL_KEY_RATE_PER_MINUTE = 60_000
# last_used_at is a convenience for `plait keys list`; writing it on every request would make each request
# take the database's write lock, so it is written at most this often per key.
TOUCH_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    prefix: str
    scopes: tuple[Scope, ...]
    rate_limit: int | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    def allows(self, scope: Scope) -> bool:
        return "admin" in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # shown once; never stored


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_scopes(scopes: str | list[str] | tuple[str, ...]) -> tuple[Scope, ...]:
    items = scopes.replace(",", " ").split() if isinstance(scopes, str) else list(scopes)
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise InputError(f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(SCOPES)}")
    if not items:
        raise InputError(f"a key needs at least one scope; choose from {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in items)


def _row_to_key(row: object) -> ApiKey:
    r = row  # sqlite3.Row
    return ApiKey(
        id=r["id"], name=r["name"], prefix=r["prefix"],  # type: ignore[index]
        scopes=tuple(r["scopes"].split()),  # type: ignore[index]
        rate_limit=r["rate_limit"] or None,  # type: ignore[index]
        created_at=r["created_at"], last_used_at=r["last_used_at"], revoked_at=r["revoked_at"],  # type: ignore[index]
    )


class KeyStore:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._touched: dict[str, float] = {}
        self._lock = threading.Lock()

    def create(self, name: str, scopes: str | list[str] | tuple[str, ...] = ("chat", "tasks", "index"),
               *, rate_limit: int | None = None) -> NewKey:
        name = name.strip()
        if not name:
            raise InputError("a key needs a name, e.g. `plait keys create editor`")
        if rate_limit is not None and rate_limit < 0:
            raise InputError("--rate-limit must be 0 (no limit) or a positive number of requests per minute")
        parsed = parse_scopes(scopes)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = secrets.token_hex(4)
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, name, secret_hash, prefix, scopes, rate_limit) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, hash_secret(secret), secret[:10], " ".join(parsed), rate_limit),
            )
        return NewKey(self.get(key_id), secret)

    def get(self, key_id: str) -> ApiKey:
        rows = self.store.query("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        if not rows:
            raise InputError(f"no API key with id '{key_id}'; see `plait keys list`")
        return _row_to_key(rows[0])

    def list(self, *, include_revoked: bool = False) -> builtins.list[ApiKey]:
        sql = "SELECT * FROM api_keys" + ("" if include_revoked else " WHERE revoked_at IS NULL")
        return [_row_to_key(r) for r in self.store.query(sql + " ORDER BY created_at, id")]

    def revoke(self, id_or_name: str) -> builtins.list[ApiKey]:
        """Revoke the key with this id, or every active key with this name. Returns the revoked keys."""
        with self.store.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM api_keys WHERE revoked_at IS NULL AND (id = ? OR name = ?)",
                (id_or_name, id_or_name),
            ).fetchall()
            if not rows:
                raise InputError(f"no active API key with id or name '{id_or_name}'; see `plait keys list`")
            conn.executemany("UPDATE api_keys SET revoked_at = datetime('now') WHERE id = ?",
                             [(r["id"],) for r in rows])
        return [self.get(r["id"]) for r in rows]

    def verify(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None."""
        if not secret.startswith(KEY_PREFIX):
            return None
        rows = self.store.query("SELECT * FROM api_keys WHERE secret_hash = ? AND revoked_at IS NULL",
                                (hash_secret(secret),))
        if not rows:
            return None
        key = _row_to_key(rows[0])
        self._touch(key.id)
        return key

    def _touch(self, key_id: str) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._touched.get(key_id)
            if last is not None and now - last < TOUCH_INTERVAL_SECONDS:
                return
            self._touched[key_id] = now
        with self.store.transaction() as conn:
            conn.execute("UPDATE api_keys SET last_used_at = datetime('now') WHERE id = ?", (key_id,))


def local_key_path(home: Path) -> Path:
    return home / LOCAL_KEY_FILE


def read_local_key(home: Path) -> str | None:
    """The local key's secret, if the server has created one (the CLI uses it)."""
    path = local_key_path(home)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def ensure_local_key(keys: KeyStore, home: Path) -> str:
    """The local key's secret, creating the key and its 0600 file if missing or revoked."""
    secret = read_local_key(home)
    if secret and keys.verify(secret):
        return secret
    new = keys.create(LOCAL_KEY_NAME, SCOPES, rate_limit=LOCAL_KEY_RATE_PER_MINUTE)
    path = local_key_path(home)
    home.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    # Created with 0600 from the start (not chmod-ed after), so no other user can ever read it.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new.secret + "\n")
    os.replace(tmp, path)
    return new.secret
