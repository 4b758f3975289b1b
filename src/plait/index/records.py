"""The index's rows in SQLite: collections, roots, files, documents and chunks.

Functions here take an open connection (usually inside ``store.transaction()``) so a caller can put
several of them in one transaction; none commits on its own.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from plait.errors import InputError

FileState = Literal["pending", "indexed", "partial", "skipped"]
SkipKind = Literal["unsupported", "too-large", "missing-dependency", "permission", "unreadable"]
DEFAULT_COLLECTION = "default"


@dataclass(frozen=True)
class FileRecord:
    id: int
    collection_id: int
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    state: FileState
    skip_kind: SkipKind | None
    reason: str | None

    @classmethod
    def of(cls, row: sqlite3.Row) -> FileRecord:
        return cls(row["id"], row["collection_id"], row["path"], row["size"], row["mtime_ns"], row["hash"],
                   row["state"], row["skip_kind"], row["reason"])


FILE_COLUMNS = "id, collection_id, path, size, mtime_ns, hash, state, skip_kind, reason"


def check_collection_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(c in name for c in "\n\r\t"):
        raise InputError(f"'{name}' is not a collection name; use a short name such as 'notes' or 'mail'")
    return name


def collection_id(conn: sqlite3.Connection, name: str, *, create: bool) -> int | None:
    row = conn.execute("SELECT id FROM index_collections WHERE name = ?", (name,)).fetchone()
    if row:
        return int(row[0])
    if not create:
        return None
    return int(conn.execute("INSERT INTO index_collections (name) VALUES (?)", (check_collection_name(name),))
               .lastrowid or 0)


def under(path: str, column: str = "path") -> tuple[str, tuple[object, ...]]:
    """SQL (and parameters) matching a recorded path equal to ``path`` or inside it."""
    prefix = path.rstrip(os.sep) + os.sep
    return f"({column} = ? OR substr({column}, 1, ?) = ?)", (path, len(prefix), prefix)


def files_under(conn: sqlite3.Connection, collection: int, root: str) -> dict[str, FileRecord]:
    clause, params = under(root)
    rows = conn.execute(f"SELECT {FILE_COLUMNS} FROM index_files WHERE collection_id = ? AND {clause}",
                        (collection, *params)).fetchall()
    return {row["path"]: FileRecord.of(row) for row in rows}


def chunk_ids_of_file(conn: sqlite3.Connection, file_id: int) -> list[int]:
    return [r[0] for r in conn.execute(
        "SELECT c.id FROM index_chunks c JOIN index_documents d ON d.id = c.document_id WHERE d.file_id = ?",
        (file_id,))]


def chunk_ids_of_documents(conn: sqlite3.Connection, document_ids: list[int]) -> list[int]:
    if not document_ids:
        return []
    marks = ",".join("?" * len(document_ids))
    return [r[0] for r in conn.execute(f"SELECT id FROM index_chunks WHERE document_id IN ({marks})",
                                       tuple(document_ids))]


def changes(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT changes FROM index_state WHERE id = 1").fetchone()[0])


def upsert_file(conn: sqlite3.Connection, collection: int, path: str, *, size: int, mtime_ns: int,
                hash: str | None, state: FileState, skip_kind: SkipKind | None = None,
                reason: str | None = None) -> int:
    row = conn.execute("SELECT id FROM index_files WHERE collection_id = ? AND path = ?", (collection, path)).fetchone()
    if row:
        conn.execute(
            "UPDATE index_files SET size = ?, mtime_ns = ?, hash = ?, state = ?, skip_kind = ?, reason = ?, "
            "updated_at = datetime('now') WHERE id = ?",
            (size, mtime_ns, hash, state, skip_kind, reason, row[0]))
        return int(row[0])
    cur = conn.execute(
        "INSERT INTO index_files (collection_id, path, size, mtime_ns, hash, state, skip_kind, reason) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (collection, path, size, mtime_ns, hash, state, skip_kind, reason))
    return int(cur.lastrowid or 0)


def iso_utc(value: str | None) -> str | None:
    """A date as sortable ISO 8601: converted to UTC when it names its zone, as written otherwise."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.isoformat()


def file_time(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC).replace(tzinfo=None, microsecond=0).isoformat()


def metadata_json(metadata: dict[str, str]) -> str:
    return json.dumps(metadata, ensure_ascii=False, sort_keys=True)
