"""Reading back what the index holds: one passage (a citation the person opens) and one document.

A search hit or a cited source names its passage by chunk id; these give its text, the document it comes
from (title, kind, date, sender, the file or mail message) and the passages around it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from plait.errors import InputError
from plait.store import Store

CONTEXT = 1  # passages shown before and after the cited one


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    path: str  # the file
    source: str  # the file, or "path#KEY" for a message of a mailbox (its Maildir key, or number in an mbox)
    collection: str
    kind: str
    title: str | None
    date: str | None
    sender: str | None
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    position: int
    heading: str | None
    text: str
    document: DocumentInfo
    before: tuple[str, ...]  # the passages just before and after, for context
    after: tuple[str, ...]


@dataclass(frozen=True)
class DocumentText:
    document: DocumentInfo
    passages: tuple[str, ...]  # in order; together they are the document as indexed


_DOCUMENT = """SELECT d.id, f.path, d.source, k.name, d.kind, d.title, d.date, d.sender, d.metadata
               FROM index_documents d JOIN index_files f ON f.id = d.file_id
               JOIN index_collections k ON k.id = f.collection_id WHERE d.id = ?"""


def _document(store: Store, document_id: int) -> DocumentInfo:
    rows = store.query(_DOCUMENT, (document_id,))
    if not rows:
        raise InputError(f"no document {document_id} in the index (removed or re-indexed since?)")
    r = rows[0]
    try:
        metadata = json.loads(r[8] or "{}")
    except ValueError:
        metadata = {}
    return DocumentInfo(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], metadata)


def passage(store: Store, chunk_id: int) -> Passage:
    rows = store.query("SELECT document_id, position, heading, text FROM index_chunks WHERE id = ?", (chunk_id,))
    if not rows:
        raise InputError(f"no passage {chunk_id} in the index (its file changed or was removed since?)")
    document_id, position, heading, text = rows[0]
    around = store.query("SELECT position, text FROM index_chunks WHERE document_id = ? AND position BETWEEN ? AND ? "
                         "ORDER BY position", (document_id, position - CONTEXT, position + CONTEXT))
    return Passage(chunk_id, position, heading, text, _document(store, document_id),
                   tuple(t for p, t in around if p < position), tuple(t for p, t in around if p > position))


def document_text(store: Store, document_id: int) -> DocumentText:
    info = _document(store, document_id)
    rows = store.query("SELECT text FROM index_chunks WHERE document_id = ? ORDER BY position", (document_id,))
    return DocumentText(info, tuple(r[0] for r in rows))
