"""SQLite files under a home: telling plain from encrypted, copying between the two, proving two are equal.

Used by migration (plain → encrypted, with a verified backup), key rotation (re-keying in place) and
export (encrypted → plain). A copy is checked by :func:`fingerprint`: every table's row count and a
SHA-256 over its rows in a fixed order, so "equal" means the same content, not just the same size.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from plait.store.database import connect

SQLITE_HEADER = b"SQLite format 3\x00"


def is_plain_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(16) == SQLITE_HEADER
    except OSError:
        return False


def file_key(path: Path) -> bytes | None:
    """The key that opens the database file at ``path``: none for plain SQLite, else the database key of
    the encrypted home it is in (a backup folder holds its home's key file, so this opens backups too)."""
    from plait.security.keys import sqlite_key_for

    return None if is_plain_sqlite(path) else sqlite_key_for(path)


def sqlite_files(home: Path) -> Iterator[Path]:
    """plait.db and the other SQLite databases plait keeps in a home (workflow tables), plain or encrypted."""
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if d not in ("models", "runs") and not Path(root, d).is_symlink()]
        for name in files:
            if name.endswith(".db"):
                yield Path(root, name)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def fingerprint(conn: sqlite3.Connection) -> dict[str, tuple[int, str]]:
    """Table → (rows, SHA-256 of the rows in rowid or primary-key order). Virtual tables are covered by the
    tables that hold their content (FTS5 keeps its index in ordinary shadow tables)."""
    tables = conn.execute("SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' "
                          "AND name NOT LIKE 'sqlite_%'").fetchall()
    out: dict[str, tuple[int, str]] = {}
    for name, kind, without_rowid in sorted(tuple(t) for t in tables):
        if kind != "table":
            continue
        if without_rowid:
            columns = [r[1] for r in conn.execute(f"PRAGMA table_info({_quote(name)})")]
            order = ", ".join(_quote(c) for c in columns)
        else:
            order = "rowid"
        digest = hashlib.sha256()
        count = 0
        for row in conn.execute(f"SELECT * FROM {_quote(name)} ORDER BY {order}"):
            digest.update(repr(tuple(row)).encode("utf-8", "surrogatepass"))
            count += 1
        out[name] = (count, digest.hexdigest())
    return out


def integrity(conn: sqlite3.Connection) -> str:
    return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def export(source: Path, source_key: bytes | None, dest: Path, dest_key: bytes | None) -> None:
    """Copy a whole database to a new file with another key (None: plain SQLite), through SQLCipher's
    ``sqlcipher_export`` (the documented way to change a database's encryption), then check it."""
    from plait.security.sqlcipher import open_encrypted

    if dest.exists():
        dest.unlink()
    # The source is opened through SQLCipher even when plain (an empty key), so ATTACH … KEY works.
    conn = open_encrypted(str(source), source_key or b"", timeout=30) if source_key is not None \
        else _plain_through_sqlcipher(source)
    try:
        key_sql = f"x'{dest_key.hex()}'" if dest_key is not None else ""
        conn.execute(f"ATTACH DATABASE ? AS target KEY \"{key_sql}\"", (str(dest),))
        conn.execute("SELECT sqlcipher_export('target')")
        conn.execute("DETACH DATABASE target")
    finally:
        conn.close()
    os.chmod(dest, 0o600)
    check_copy(source, source_key, dest, dest_key)


def _plain_through_sqlcipher(path: Path) -> sqlite3.Connection:
    from plait.security.sqlcipher import sqlcipher

    conn: sqlite3.Connection = sqlcipher().connect(str(path), timeout=30, isolation_level=None)
    conn.execute("PRAGMA cipher_log_level = NONE")
    return conn


class CopyMismatch(Exception):
    pass


def check_copy(source: Path, source_key: bytes | None, dest: Path, dest_key: bytes | None) -> None:
    """Raise :class:`CopyMismatch` unless ``dest`` passes SQLite's integrity check and holds exactly the rows
    of ``source``."""
    # Read-write connections, though nothing is written: a read-only one cannot remove its WAL when it
    # closes, and a WAL left beside a file that is then swapped for another must not exist.
    a = connect(source, source_key)
    b = connect(dest, dest_key)
    try:
        if integrity(b) != "ok":
            raise CopyMismatch(f"{dest} fails SQLite's integrity check")
        if fingerprint(a) != fingerprint(b):
            raise CopyMismatch(f"{dest} does not hold the same rows as {source}")
    finally:
        a.close()
        b.close()


def checkpoint(path: Path, key: bytes | None) -> None:
    """Fold the WAL into the database file and empty it, so the file alone is the whole database."""
    conn = connect(path, key)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
