"""Incremental ingestion: bring the index in step with the files under some roots.

For each unit (file, or Maildir folder) under a root:

- same size and modification time as recorded → nothing is read;
- otherwise its content hash decides: the same hash → only the times are updated; the hash of a unit
  that vanished from the roots → a move: the records follow the new path, nothing is re-read or
  re-embedded; the hash of a unit indexed elsewhere → a copy of its rows, nothing re-embedded;
- anything else is read with the registered readers and chunked; a document whose content is unchanged
  (say, the old messages of a mailbox that grew) keeps its chunks; chunks whose text was embedded
  before reuse that embedding.
Recorded units no longer found under the roots are removed with their chunks, from SQLite, the keyword
index (triggers) and the vector index.

Each document is committed in its own transaction (its old chunks out, its new chunks, vectors and
keyword entries in), and a unit's record is marked done only after all its documents, so a crash at any
point leaves no duplicates and the next run picks up the units left pending. Embeddings are computed in
batches across documents, which is where ingestion spends its time: by an embedding executor
(:mod:`plait.index.executors`), in this process or on a cluster, while this process keeps reading; flushes
are committed in the order they were read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from plait.errors import InputError, MissingDependency, PlaitError
from plait.index import records
from plait.index.chunking import Chunk, chunk_document
from plait.index.executors import EmbeddingExecutor, EmbeddingJob, LocalEmbedding
from plait.index.records import FileRecord, SkipKind
from plait.index.scan import Unit, content_hash, scan

if TYPE_CHECKING:
    import numpy as np

    from plait.index.vectors import VectorIndex
    from plait.models.base import Embedder
    from plait.readers.document import Document
    from plait.settings import Settings
    from plait.store import Store

FLUSH_CHUNKS = 256  # chunks embedded together: large batches sort by length and keep the model busy
DEFAULT_MAX_FILE_MB = 100.0
MAILBOX_SUFFIXES = (".mbox", ".mbx")  # mail archives are legitimately large; their reader streams them


class _ReaderWarnings(logging.Handler):
    """Collects what readers log while reading one unit: the parts they skipped (a broken message of a
    mailbox) become the unit's partial-read reason."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    kind: SkipKind | None = None


@dataclass
class IngestProgress:
    """A snapshot for progress displays, passed to the ``progress`` callback as work advances."""

    phase: str  # scanning | indexing | removing | saving
    units_total: int = 0
    units_done: int = 0
    chunks_added: int = 0
    chunks_embedded: int = 0
    current: str | None = None


@dataclass
class IngestReport:
    collection: str
    units: int = 0  # files (and mail folders) found under the roots
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    copied: int = 0
    deleted: int = 0
    documents_added: int = 0
    documents_kept: int = 0
    chunks_added: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0  # computed by the model
    chunks_reused: int = 0  # embedding taken from an identical chunk already stored
    skipped: list[Skipped] = field(default_factory=list)
    partial: list[Skipped] = field(default_factory=list)  # read, but a part of it was not
    missing_roots: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class _PendingDoc:
    file_id: int
    doc: Document
    hash: str
    chunks: list[Chunk]
    texts: list[str]  # what is embedded, per chunk


@dataclass
class _PendingFile:
    file_id: int
    unit: Unit
    hash: str
    sources: set[str]
    state: records.FileState
    reason: str | None
    skip_kind: SkipKind | None


@dataclass
class _Flush:
    """Documents whose vectors an executor is computing, and the units done once they are committed."""

    docs: list[_PendingDoc]
    known: dict[str, bytes]  # embed hash → vector, for texts embedded before
    embedding: list[str]  # texts the job embeds
    job: EmbeddingJob | None
    finishing: list[_PendingFile]
    copies: list[tuple[Unit, FileRecord | None, str]] = field(default_factory=list)  # of units it finishes


def _text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def document_hash(doc: Document) -> str:
    payload = json.dumps([doc.kind, doc.title, doc.text, doc.metadata,
                          [(s.heading, s.level, s.text) for s in doc.sections]], ensure_ascii=False, sort_keys=True)
    return _text_hash(payload)


def _skip_kind(exc: BaseException) -> SkipKind:
    if isinstance(exc, MissingDependency):
        return "missing-dependency"
    cause = exc.__cause__ or exc
    if isinstance(cause, PermissionError) or "permission denied" in str(exc).lower():
        return "permission"
    return "unreadable"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PlaitError):
        return str(exc)
    return f"could not be read ({type(exc).__name__}: {exc})"


class IndexState(Protocol):
    """What ingestion needs of an index: its database, its embedder and its vector store (an
    :class:`plait.index.core.Index` is one)."""

    store: Store
    settings: Settings

    def embedder(self) -> Embedder: ...

    def decode_vectors(self, blobs: list[bytes]) -> np.ndarray: ...

    def vectors(self) -> VectorIndex: ...

    def loaded_vectors(self) -> VectorIndex | None: ...

    def save_vectors(self) -> None: ...


class Ingester:
    def __init__(self, index: IndexState, collection: str, *, max_file_mb: float = DEFAULT_MAX_FILE_MB,
                 progress: Callable[[IngestProgress], None] | None = None,
                 executor: EmbeddingExecutor | None = None) -> None:
        self.index, self.store = index, index.store
        self.executor = executor or LocalEmbedding(index)
        self._in_flight: deque[_Flush] = deque()
        # Vectors of flushes in flight or just committed, by embed hash (None: the job is not back yet), for
        # later flushes that left those texts to them; dropped once no flush submitted before can need them.
        self._embedding: dict[str, bytes | None] = {}
        self._expiring: deque[tuple[int, list[str]]] = deque()  # (flushes submitted by then, their hashes)
        self._landing: dict[str, _Flush] = {}  # content hash of a unit read → the flush in flight that finishes it
        self._submitted = self._collected = 0
        self.collection = records.check_collection_name(collection)
        self.max_file_bytes = int(max_file_mb * 1_000_000)
        self._progress_cb = progress
        self.progress = IngestProgress("scanning")
        self.report = IngestReport(self.collection)
        self._pending: list[_PendingDoc] = []
        self._pending_chunks = 0
        self._finishing: list[_PendingFile] = []
        self._collection_id = 0

    def _tick(self, **changes: object) -> None:
        for key, value in changes.items():
            setattr(self.progress, key, value)
        if self._progress_cb:
            self._progress_cb(self.progress)

    # -- the run ----------------------------------------------------------------------------------

    def run(self, roots: Iterable[str | Path], *, record_roots: bool = True) -> IngestReport:
        start = time.perf_counter()
        paths = [str(Path(r).expanduser().absolute()) for r in roots]
        for path in paths:
            if not os.path.exists(path):
                raise InputError(f"{path} does not exist; check the path (nothing was indexed)")
        with self.store.transaction() as conn:
            cid = records.collection_id(conn, self.collection, create=True)
            assert cid is not None
            self._collection_id = cid
            if record_roots:
                for path in paths:
                    conn.execute("INSERT OR IGNORE INTO index_roots (collection_id, path) VALUES (?, ?)", (cid, path))

        todo: list[tuple[Unit, FileRecord | None]] = []
        vanished: dict[str, FileRecord] = {}
        for root in paths:
            known = records.files_under(self.store.connection, self._collection_id, root)
            seen: set[str] = set()
            for unit in scan(root):
                if unit.path in seen:
                    continue
                seen.add(unit.path)
                self.report.units += 1
                rec = known.get(unit.path)
                if rec and self._unchanged(unit, rec):
                    self.report.unchanged += 1
                else:
                    todo.append((unit, rec))
                if self.report.units % 500 == 0:
                    self._tick(units_total=self.report.units)
            vanished.update({path: rec for path, rec in known.items() if path not in seen})
        # A root inside another root would list its units twice.
        todo = list({unit.path: (unit, rec) for unit, rec in todo}.values())
        for path in vanished.keys() & {unit.path for unit, _ in todo}:  # a set: 50,000 moved files stay fast
            vanished.pop(path)

        self._tick(phase="indexing", units_total=len(todo), units_done=0)
        moved_from = {rec.hash: rec for rec in vanished.values() if rec.hash and rec.state in ("indexed", "partial")}
        for unit, rec in todo:
            self._tick(current=unit.path)
            try:
                self._process(unit, rec, vanished, moved_from)
            except sqlite3.IntegrityError as exc:
                # Another plait process changed this unit's rows at the same moment (both indexing the
                # same folder): leave it to the next run rather than stop this one.
                self.report.skipped.append(Skipped(unit.path, f"{unit.path} was changed by another plait "
                                                   f"process at the same time ({exc}); run the command again"))
        self._flush()
        self._drain()

        self._tick(phase="removing", current=None)
        for rec in vanished.values():
            self._delete_file(rec)
            self.report.deleted += 1
        self._tick(phase="saving")
        self.index.save_vectors()
        self.report.seconds = time.perf_counter() - start
        return self.report

    def _unchanged(self, unit: Unit, rec: FileRecord) -> bool:
        if unit.error or rec.size != unit.size or rec.mtime_ns != unit.mtime_ns:
            return False
        if rec.state in ("indexed", "partial"):
            return True
        if rec.state != "skipped":
            return False  # pending: a run stopped while reading it
        # A skip is retried only when its cause may be gone.
        if rec.skip_kind == "missing-dependency":
            return False
        if rec.skip_kind == "too-large":
            return unit.size > self.max_file_bytes
        if rec.skip_kind == "unsupported":
            from plait.readers.document import can_read

            return not can_read(unit.path)
        if rec.skip_kind == "permission":
            return not os.access(unit.path, os.R_OK)
        return True

    # -- one unit ---------------------------------------------------------------------------------

    def _skip(self, unit: Unit, rec: FileRecord | None, reason: str, kind: SkipKind) -> None:
        self.report.skipped.append(Skipped(unit.path, reason, kind))
        self._finish_now(_PendingFile(rec.id if rec else 0, unit, "", set(), "skipped", reason, kind))

    def _process(self, unit: Unit, rec: FileRecord | None, vanished: dict[str, FileRecord],
                 moved_from: dict[str, FileRecord]) -> None:
        from plait.readers.document import reader_for

        if unit.error:
            kind: SkipKind = "permission" if "permission" in unit.error.lower() else "unreadable"
            return self._skip(unit, rec, f"{unit.path} {unit.error}", kind)
        try:
            reader_for(Path(unit.path))
        except InputError as exc:
            return self._skip(unit, rec, str(exc), "unsupported")
        is_mailbox = unit.folder or unit.path.lower().endswith(MAILBOX_SUFFIXES)
        if unit.size > self.max_file_bytes and not is_mailbox:
            return self._skip(unit, rec, f"{unit.path} is {unit.size / 1e6:.0f} MB, over the "
                              f"{self.max_file_bytes / 1e6:.0f} MB limit; raise it with --max-size", "too-large")
        try:
            digest = content_hash(unit)
        except OSError as exc:
            kind = "permission" if isinstance(exc, PermissionError) else "unreadable"
            return self._skip(unit, rec, f"{unit.path} cannot be read ({exc.strerror or exc})", kind)

        if rec and rec.hash == digest and rec.state in ("indexed", "partial"):
            with self.store.transaction() as conn:  # touched, not changed
                conn.execute("UPDATE index_files SET size = ?, mtime_ns = ? WHERE id = ?",
                             (unit.size, unit.mtime_ns, rec.id))
            self.report.unchanged += 1
            return self._done()
        origin = moved_from.pop(digest, None)
        if origin is not None and origin.path in vanished:
            vanished.pop(origin.path)
            self._move(origin, unit, rec)
            self.report.moved += 1
            return self._done()
        landing = self._landing.get(digest)
        if landing is not None:
            # Its twin is read and on its way to the database (the local path would have written it by now):
            # copy it once that flush is committed, as the local path would copy it now.
            landing.copies.append((unit, rec, digest))
            return None
        self._copy_or_read(unit, rec, digest)

    def _indexed_twin(self, digest: str, path: str) -> FileRecord | None:
        row = self.store.connection.execute(
            f"SELECT {records.FILE_COLUMNS} FROM index_files WHERE hash = ? AND state = 'indexed' AND path != ? "
            "LIMIT 1", (digest, path)).fetchone()
        return FileRecord.of(row) if row else None

    def _move(self, origin: FileRecord, unit: Unit, rec: FileRecord | None) -> None:
        removed: list[int] = []
        with self.store.transaction() as conn:
            before = records.changes(conn)
            if rec is not None:  # the move replaced a file already at the new path
                removed = records.chunk_ids_of_file(conn, rec.id)
                conn.execute("DELETE FROM index_files WHERE id = ?", (rec.id,))
            conn.execute("UPDATE index_files SET path = ?, size = ?, mtime_ns = ?, updated_at = datetime('now') "
                         "WHERE id = ?", (unit.path, unit.size, unit.mtime_ns, origin.id))
            # Sources are the path, or "path#message" for a mailbox's messages.
            conn.execute("UPDATE index_documents SET source = ? || substr(source, ?) WHERE file_id = ?",
                         (unit.path, len(origin.path) + 1, origin.id))
            after = records.changes(conn)
        self._vectors_removed(removed, before, after)
        self.report.chunks_removed += len(removed)

    def _copy(self, twin: FileRecord, unit: Unit, digest: str, rec: FileRecord | None) -> None:
        import numpy as np

        added_ids: list[int] = []
        blobs: list[bytes] = []
        with self.store.transaction() as conn:
            before = records.changes(conn)
            removed = records.chunk_ids_of_file(conn, rec.id) if rec else []
            if rec is not None:
                conn.execute("DELETE FROM index_documents WHERE file_id = ?", (rec.id,))
            file_id = records.upsert_file(conn, self._collection_id, unit.path, size=unit.size, mtime_ns=unit.mtime_ns,
                                          hash=digest, state="indexed")
            docs = conn.execute("SELECT * FROM index_documents WHERE file_id = ?", (twin.id,)).fetchall()
            for d in docs:
                source = unit.path + d["source"][len(twin.path):]
                new_doc = conn.execute(
                    "INSERT INTO index_documents (file_id, source, kind, title, date, sender, metadata, hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (file_id, source, d["kind"], d["title"], d["date"], d["sender"], d["metadata"], d["hash"]),
                ).lastrowid
                rows = conn.execute(
                    "SELECT c.position, c.section, c.heading, c.context, c.text, c.embed_hash, v.vector "
                    "FROM index_chunks c JOIN index_vectors v ON v.chunk_id = c.id WHERE c.document_id = ? "
                    "ORDER BY c.position", (d["id"],)).fetchall()
                for r in rows:
                    cid = conn.execute(
                        "INSERT INTO index_chunks (document_id, position, section, heading, context, text, "
                        "embed_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (new_doc, r["position"], r["section"], r["heading"], r["context"], r["text"], r["embed_hash"]),
                    ).lastrowid
                    conn.execute("INSERT INTO index_vectors (chunk_id, vector) VALUES (?, ?)", (cid, r["vector"]))
                    added_ids.append(int(cid or 0))
                    blobs.append(r["vector"])
                self.report.documents_added += 1
            after = records.changes(conn)
        self.report.chunks_added += len(added_ids)
        self.report.chunks_reused += len(added_ids)
        self.report.chunks_removed += len(removed)
        vectors = self.index.decode_vectors(blobs) if blobs else None
        self._apply(np.array(added_ids, dtype=np.int64), vectors, removed, before, after)

    def _read(self, unit: Unit, rec: FileRecord | None, digest: str) -> None:
        from plait.readers.document import read_documents

        with self.store.transaction() as conn:
            file_id = records.upsert_file(conn, self._collection_id, unit.path, size=unit.size,
                                          mtime_ns=unit.mtime_ns, hash=None, state="pending")
        stored = {r["source"]: (r["id"], r["hash"]) for r in self.store.query(
            "SELECT id, source, hash FROM index_documents WHERE file_id = ?", (file_id,))}
        sources: set[str] = set()
        empty: set[str] = set()  # documents with no text: nothing to store
        failure: BaseException | None = None
        read = 0
        caught = _ReaderWarnings()
        reader_log = logging.getLogger("plait.readers")
        reader_log.addHandler(caught)
        try:
            documents = read_documents(unit.path)
            while True:
                try:
                    doc = next(documents)
                except StopIteration:
                    break
                except Exception as exc:  # noqa: BLE001 - any reader failure is this file's, not the run's
                    failure = exc
                    break
                read += 1
                source = doc.source
                if source in sources or source in empty:  # two messages with one id: keep both
                    source = f"{source}#{read}"
                # Errors in _prepare (embedding, the database) are not the file's: they propagate.
                if self._prepare(file_id, doc, source, stored.get(source)):
                    sources.add(source)
                else:
                    empty.add(source)
        finally:
            reader_log.removeHandler(caught)
        parts = caught.messages
        if failure is not None and read == 0:
            reason = _reason(failure)
            self.report.skipped.append(Skipped(unit.path, reason, _skip_kind(failure)))
            self._finishing.append(_PendingFile(file_id, unit, digest, set(), "skipped", reason, _skip_kind(failure)))
        elif failure is not None or parts:
            problems = ([_reason(failure)] if failure else []) + parts
            reason = f"{len(problems)} part(s) not read: " + "; ".join(problems[:5])
            self.report.partial.append(Skipped(unit.path, reason))
            self._finishing.append(_PendingFile(file_id, unit, digest, sources, "partial", reason, None))
        elif not sources:
            reason = f"{unit.path} has no text to index"
            self.report.skipped.append(Skipped(unit.path, reason, "unreadable"))
            self._finishing.append(_PendingFile(file_id, unit, digest, set(), "skipped", reason, "unreadable"))
        else:
            self._finishing.append(_PendingFile(file_id, unit, digest, sources, "indexed", None, None))
        if not self._pending:
            self._finish_files()

    def _prepare(self, file_id: int, doc: Document, source: str, stored: tuple[int, str] | None) -> bool:
        """Queue a document for embedding and storing; False when it has no text."""
        from dataclasses import replace

        digest = document_hash(doc)
        if stored is not None and stored[1] == digest:
            self.report.documents_kept += 1
            return True
        if source != doc.source:
            doc = replace(doc, source=source)
        if self.index.settings.redact_index:  # personal data masked before anything is stored or embedded
            from plait.tasks.redact import redact_document

            doc = redact_document(doc)
        chunks = chunk_document(doc)
        if not chunks:
            return False
        # The file name says nothing the text does not; a real title (a subject, a heading) does.
        title = doc.title if doc.title and doc.title != Path(doc.source.split("#", 1)[0]).stem else None
        texts = [c.embed_text(title) for c in chunks]
        self._pending.append(_PendingDoc(file_id, doc, digest, chunks, texts))
        self._pending_chunks += len(chunks)
        if self._pending_chunks >= FLUSH_CHUNKS:
            self._flush()
        return True

    # -- embedding and committing -----------------------------------------------------------------

    def _flush(self) -> None:
        """Hand the pending documents' new texts to the executor; commit what the window lets go."""
        if not self._pending:
            self._finish_files()  # now, or with the last flush in flight
            return
        pending, self._pending, self._pending_chunks = self._pending, [], 0
        hashes = sorted({_text_hash(t) for p in pending for t in p.texts})
        known: dict[str, bytes] = {}
        for start in range(0, len(hashes), 500):
            batch = hashes[start:start + 500]
            for row in self.store.query(
                    "SELECT c.embed_hash, v.vector FROM index_chunks c JOIN index_vectors v ON v.chunk_id = c.id "
                    f"WHERE c.embed_hash IN ({','.join('?' * len(batch))}) GROUP BY c.embed_hash", tuple(batch)):
                known[row[0]] = row[1]
        # A text an earlier flush still in flight embeds is not embedded again (nor would it be had that
        # flush been committed already), so each flush embeds the same texts whatever the window.
        to_embed = sorted({t for p in pending for t in p.texts
                           if _text_hash(t) not in known and _text_hash(t) not in self._embedding})
        job = None
        if to_embed:
            def advanced(n: int) -> None:
                self._tick(chunks_embedded=self.progress.chunks_embedded + n)

            job = self.executor.submit(to_embed, advanced)
            self._embedding.update((_text_hash(t), None) for t in to_embed)
        self._in_flight.append(_Flush(pending, known, to_embed, job, []))
        self._submitted += 1
        self._finish_files()
        while len(self._in_flight) > self.executor.window:
            self._collect()

    def _collect(self) -> None:
        """Wait for the oldest flush's vectors and commit its documents, then finish its units."""
        import numpy as np

        flush = self._in_flight.popleft()
        if flush.job is not None:
            vectors = flush.job.result()
            for text, vector in zip(flush.embedding, vectors, strict=True):
                self._embedding[_text_hash(text)] = np.ascontiguousarray(vector, dtype="<f4").tobytes()
            self.report.chunks_embedded += len(flush.embedding)
        known = flush.known
        for p in flush.docs:
            for text in p.texts:
                h = _text_hash(text)
                if h not in known:
                    vector = self._embedding[h]
                    assert vector is not None, "flushes are collected in the order they were submitted"
                    known[h] = vector
        reused = sum(len(p.texts) for p in flush.docs) - len(flush.embedding)
        self.report.chunks_reused += max(0, reused)
        for p in flush.docs:
            self._commit(p, known)
        for f in flush.finishing:
            if self._landing.get(f.hash) is flush:
                del self._landing[f.hash]
            self._finish_now(f)
        # Flushes submitted from now on find these texts in SQLite; the ones already submitted may still
        # need them.
        self._collected += 1
        self._expiring.append((self._submitted, [_text_hash(t) for t in flush.embedding]))
        while self._expiring and self._expiring[0][0] <= self._collected:
            for h in self._expiring.popleft()[1]:
                self._embedding.pop(h, None)
        for unit, rec, digest in flush.copies:  # last: reading one (its twin was skipped) may flush again
            self._copy_or_read(unit, rec, digest)

    def _drain(self) -> None:
        """Commit every flush still in flight, then finish the units left (the end of a run). Committing one
        may read a file that waited for its twin, leaving documents pending: they are flushed in turn."""
        while self._in_flight or self._pending:
            if self._in_flight:
                self._collect()
            else:
                self._flush()
        self._finish_files()

    def _commit(self, p: _PendingDoc, vectors: dict[str, bytes]) -> None:
        import numpy as np

        doc = p.doc
        meta = dict(doc.metadata)
        date = records.iso_utc(meta.get("date")) or records.file_time(
            self._unit_mtime(p.file_id))
        sender = meta.get("sender") or meta.get("author")
        context_title = doc.title or ""
        added: list[int] = []
        blobs: list[bytes] = []
        with self.store.transaction() as conn:
            before = records.changes(conn)
            # The stored version, looked up again inside the transaction: another process indexing the
            # same file at the same time may have replaced it since this one read the file.
            old = conn.execute("SELECT id FROM index_documents WHERE file_id = ? AND source = ?",
                               (p.file_id, doc.source)).fetchone()
            removed = records.chunk_ids_of_documents(conn, [old[0]]) if old else []
            if old:
                conn.execute("DELETE FROM index_documents WHERE id = ?", (old[0],))
            doc_id = conn.execute(
                "INSERT INTO index_documents (file_id, source, kind, title, date, sender, metadata, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (p.file_id, doc.source, doc.kind, doc.title, date, sender, records.metadata_json(meta), p.hash),
            ).lastrowid
            for chunk, text in zip(p.chunks, p.texts, strict=True):
                h = _text_hash(text)
                context = " > ".join(x for x in (context_title, chunk.heading) if x)
                cid = conn.execute(
                    "INSERT INTO index_chunks (document_id, position, section, heading, context, text, embed_hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (doc_id, chunk.position, chunk.section, chunk.heading, context, chunk.text, h)).lastrowid
                conn.execute("INSERT INTO index_vectors (chunk_id, vector) VALUES (?, ?)", (cid, vectors[h]))
                added.append(int(cid or 0))
                blobs.append(vectors[h])
            after = records.changes(conn)
        self.report.documents_added += 1
        self.report.chunks_added += len(added)
        self.report.chunks_removed += len(removed)
        self._tick(chunks_added=self.progress.chunks_added + len(added))
        self._apply(np.array(added, dtype=np.int64), self.index.decode_vectors(blobs) if blobs else None,
                    removed, before, after)

    def _unit_mtime(self, file_id: int) -> int:
        row = self.store.query("SELECT mtime_ns FROM index_files WHERE id = ?", (file_id,))
        return int(row[0][0]) if row else 0

    def _finish_files(self) -> None:
        """Finish the units whose documents are all written, or, while flushes are in flight, once the last
        one (which holds their last documents) is committed."""
        finishing, self._finishing = self._finishing, []
        if self._in_flight:
            last = self._in_flight[-1]
            last.finishing.extend(finishing)
            self._landing.update((f.hash, last) for f in finishing if f.hash)
            return
        for f in finishing:
            self._finish_now(f)

    def _copy_or_read(self, unit: Unit, rec: FileRecord | None, digest: str) -> None:
        twin = self._indexed_twin(digest, unit.path)
        if twin is not None:
            self._copy(twin, unit, digest, rec)
            self.report.copied += 1
            return self._done()
        if rec is None:
            self.report.new += 1
        else:
            self.report.changed += 1
        self._read(unit, rec, digest)

    def _done(self) -> None:
        self._tick(units_done=self.progress.units_done + 1)

    def _finish_now(self, f: _PendingFile) -> None:
        """Mark a unit done: drop its documents that are no more, record its state and hash."""
        with self.store.transaction() as conn:
            before = records.changes(conn)
            file_id = f.file_id or records.upsert_file(
                conn, self._collection_id, f.unit.path, size=f.unit.size, mtime_ns=f.unit.mtime_ns, hash=None,
                state="pending")
            stale = [r[0] for r in conn.execute("SELECT id, source FROM index_documents WHERE file_id = ?", (file_id,))
                     if r[1] not in f.sources]
            removed = records.chunk_ids_of_documents(conn, stale)
            if stale:
                conn.execute(f"DELETE FROM index_documents WHERE id IN ({','.join('?' * len(stale))})", tuple(stale))
            records.upsert_file(conn, self._collection_id, f.unit.path, size=f.unit.size, mtime_ns=f.unit.mtime_ns,
                                hash=f.hash or None, state=f.state, skip_kind=f.skip_kind, reason=f.reason)
            after = records.changes(conn)
        self.report.chunks_removed += len(removed)
        self._vectors_removed(removed, before, after)
        self._done()

    def _delete_file(self, rec: FileRecord) -> None:
        with self.store.transaction() as conn:
            before = records.changes(conn)
            removed = records.chunk_ids_of_file(conn, rec.id)
            conn.execute("DELETE FROM index_files WHERE id = ?", (rec.id,))
            after = records.changes(conn)
        self.report.chunks_removed += len(removed)
        self._vectors_removed(removed, before, after)

    # -- the derived vector index -----------------------------------------------------------------

    def _vectors_removed(self, removed: list[int], before: int, after: int) -> None:
        import numpy as np

        self._apply(np.zeros(0, dtype=np.int64), None, removed, before, after)

    def _apply(self, added: np.ndarray, vectors: np.ndarray | None, removed: list[int], before: int,
               after: int) -> None:
        import numpy as np

        if before == after:
            return
        index = self.index.loaded_vectors()
        if index is None:
            if len(added):
                # Build it now, while indexing, rather than on the first search. Opening reads SQLite,
                # which already holds this transaction's chunks.
                self.index.vectors()
            return  # otherwise opening it later reads the changes from SQLite
        dims = index.dimensions
        index.apply(added, vectors if vectors is not None else np.zeros((0, dims), dtype=np.float32),
                    np.array(removed, dtype=np.int64), changes_before=before, changes_after=after)
