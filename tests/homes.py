"""Reading what plait keeps in a home the way plait does: encrypted homes are the default, so a test that
looks inside a database or an output file opens it with the home's key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from plait.security.keys import sqlite_key_for
from plait.security.storage import read_bytes
from plait.store.database import connect


def open_db(path: Path, *, readonly: bool = False, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection to a SQLite file plait keeps (encrypted inside an encrypted home), with plain tuple rows."""
    conn = connect(path, sqlite_key_for(path), readonly=readonly, timeout=timeout)
    conn.row_factory = None
    return conn


def read_text(path: Path) -> str:
    """A file a workflow wrote (decrypted when it is inside an encrypted home)."""
    return read_bytes(path).decode("utf-8")


def read_output_bytes(path: Path) -> bytes:
    return read_bytes(path)


def open_files(path: Path) -> int:
    """How many file descriptors this process has open on ``path`` (one per SQLite connection to a database)."""
    import os

    target, count = str(path.resolve()), 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            count += os.readlink(fd) == target
        except OSError:
            continue
    return count
