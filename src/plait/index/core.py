"""The Index of one plait home: collections of files, kept in step, searched by words and by meaning.

One ``Index`` per runtime (``open_index``); it loads the embedding model and the vector index only
when some work needs them, so re-running ``index add`` on unchanged folders loads neither.

The embedding model is the index's own: the one that embedded its chunks (recorded in
``index_state``), whatever the current ``embed_model`` setting says, because vectors of two models are
not comparable. An empty index adopts the current setting.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from plait.errors import InputError
from plait.index import records
from plait.index.executors import EmbeddingExecutor
from plait.index.ingest import DEFAULT_MAX_FILE_MB, Ingester, IngestProgress, IngestReport, Skipped
from plait.index.vectors import Consistency, VectorIndex, vectors_from_blobs

if TYPE_CHECKING:
    import numpy as np

    from plait.models.base import Embedder
    from plait.runtime import Runtime


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    roots: tuple[str, ...]
    files: int
    documents: int
    chunks: int
    skipped: int


@dataclass(frozen=True)
class FileInfo:
    collection: str
    path: str
    state: str
    documents: int
    chunks: int
    reason: str | None


@dataclass(frozen=True)
class RemoveReport:
    files: int
    chunks: int
    roots: int
    collections: int


@dataclass
class IndexStatus:
    embed_model: str | None
    dimensions: int | None
    collections: list[CollectionInfo]
    files: int
    documents: int
    chunks: int
    pending: int  # files a stopped run left unfinished (the next add or update finishes them)
    skipped: list[Skipped] = field(default_factory=list)
    partial: list[Skipped] = field(default_factory=list)
    consistency: Consistency | None = None
    database_bytes: int = 0
    vector_bytes: int = 0


class Index:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime, self.store, self.settings = runtime, runtime.store, runtime.settings
        self.folder = self.settings.home / "index"
        self._lock = threading.RLock()
        self._vectors: VectorIndex | None = None

    # -- the model and the vector index -----------------------------------------------------------

    def _state(self) -> tuple[str | None, int | None]:
        row = self.store.query("SELECT embed_model, dimensions FROM index_state WHERE id = 1")[0]
        return row[0], row[1]

    def model_name(self) -> str:
        recorded, _ = self._state()
        if recorded and recorded != self.settings.embed_model:
            empty = not self.store.query("SELECT 1 FROM index_chunks LIMIT 1")
            if empty:
                return self.settings.embed_model
        return recorded or self.settings.embed_model

    def embedder(self) -> Embedder:
        from plait.models.base import Embedder

        name = self.model_name()
        model = self.runtime.model(name, Embedder)
        self.adopt_model(name, model.dimensions)
        return model

    def adopt_model(self, name: str, dimensions: int) -> None:
        """Record the model the index's vectors come from (:meth:`embedder` does, and so does an embedding
        executor whose model runs elsewhere)."""
        recorded, dims = self._state()
        if (recorded, dims) != (name, dimensions):
            with self.store.transaction() as conn:
                conn.execute("UPDATE index_state SET embed_model = ?, dimensions = ? WHERE id = 1",
                             (name, dimensions))
            if self._vectors is not None and self._vectors.model != name:
                self._vectors.reset()
                self._vectors = None

    def loaded_vectors(self) -> VectorIndex | None:
        return self._vectors

    def vectors(self, progress: Callable[[int, int], None] | None = None) -> VectorIndex:
        """The vector index, opened (checked against SQLite, repaired or rebuilt) on first use."""
        with self._lock:
            if self._vectors is None:
                name, dims = self._state()
                if name is None or dims is None:
                    model = self.embedder()
                    name, dims = model.spec.name, model.dimensions
                vectors = VectorIndex(self.store, self.folder / "vectors", model=name, dimensions=dims,
                                      threads=self.settings.threads)
                vectors.open(progress)
                self._vectors = vectors
            return self._vectors

    def save_vectors(self) -> None:
        if self._vectors is not None:
            self._vectors.save()

    def decode_vectors(self, blobs: list[bytes]) -> np.ndarray:
        _, dims = self._state()
        assert dims is not None
        return vectors_from_blobs(blobs, dims)

    # -- changing what is indexed -----------------------------------------------------------------

    def add(self, paths: Sequence[str | Path], *, collection: str = records.DEFAULT_COLLECTION,
            max_file_mb: float = DEFAULT_MAX_FILE_MB,
            progress: Callable[[IngestProgress], None] | None = None,
            executor: EmbeddingExecutor | None = None) -> IngestReport:
        """Index files and folders (and keep them in step on later runs): see :mod:`plait.index.ingest`.
        ``executor`` computes the embeddings (default: in this process); the caller closes it."""
        if not paths:
            raise InputError("give at least one file or folder to index")
        with self._lock:
            return Ingester(self, collection, max_file_mb=max_file_mb, progress=progress,
                            executor=executor).run(paths)

    def update(self, *, collection: str | None = None, max_file_mb: float = DEFAULT_MAX_FILE_MB,
               progress: Callable[[IngestProgress], None] | None = None,
               executor: EmbeddingExecutor | None = None) -> list[IngestReport]:
        """Re-scan every root added before (of one collection, or all): follow changes and deletions.

        A root that was deleted (its parent folder is still there) is removed with its files. A root
        whose parent is missing too (an unmounted drive) is left as it is, not emptied; it is listed in
        the report's ``missing_roots``. Remove it with ``remove`` if it is gone for good.
        """
        reports = []
        with self._lock:
            for name, roots in self._roots(collection).items():
                present = [r for r in roots if os.path.exists(r)]
                deleted = [r for r in roots if r not in present and os.path.isdir(os.path.dirname(r))]
                ingester = Ingester(self, name, max_file_mb=max_file_mb, progress=progress, executor=executor)
                report = ingester.run(present, record_roots=False) if present else IngestReport(name)
                for root in deleted:
                    removed = self.remove([root], collection=name)
                    report.deleted += removed.files
                    report.chunks_removed += removed.chunks
                report.missing_roots = [r for r in roots if r not in present and r not in deleted]
                reports.append(report)
        return reports

    def _roots(self, collection: str | None) -> dict[str, list[str]]:
        rows = self.store.query(
            "SELECT k.name, r.path FROM index_collections k LEFT JOIN index_roots r ON r.collection_id = k.id "
            + ("WHERE k.name = ? " if collection else "") + "ORDER BY k.name, r.path",
            (collection,) if collection else ())
        if collection and not rows:
            raise InputError(f"there is no collection '{collection}'; see `plait index list`")
        out: dict[str, list[str]] = {}
        for row in rows:
            out.setdefault(row[0], [])
            if row[1]:
                out[row[0]].append(row[1])
        return out

    def remove(self, paths: Iterable[str | Path] = (), *, collection: str | None = None) -> RemoveReport:
        """Forget files under ``paths`` (in one collection or all), or a whole collection when no path
        is given. The files themselves are not touched."""
        import numpy as np

        targets = [str(Path(p).expanduser().absolute()) for p in paths]
        if not targets and not collection:
            raise InputError("give the paths to remove from the index, or --collection NAME to remove a collection")
        with self._lock, self.store.transaction() as conn:
            before = records.changes(conn)
            ids: list[int] = []
            if collection:
                cid = records.collection_id(conn, collection, create=False)
                if cid is None:
                    raise InputError(f"there is no collection '{collection}'; see `plait index list`")
                scope, scope_params = "collection_id = ?", [cid]
            else:
                scope, scope_params = "1", []
            files = roots = collections = 0
            if targets:
                for target in targets:
                    clause, params = records.under(target)
                    rows = conn.execute(f"SELECT id FROM index_files WHERE {scope} AND {clause}",
                                        (*scope_params, *params)).fetchall()
                    for (file_id,) in rows:
                        ids.extend(records.chunk_ids_of_file(conn, file_id))
                        conn.execute("DELETE FROM index_files WHERE id = ?", (file_id,))
                    files += len(rows)
                    roots += conn.execute(f"DELETE FROM index_roots WHERE {scope} AND {clause}",
                                          (*scope_params, *params)).rowcount
            else:
                ids = [r[0] for r in conn.execute(
                    "SELECT c.id FROM index_chunks c JOIN index_documents d ON d.id = c.document_id "
                    "JOIN index_files f ON f.id = d.file_id WHERE f.collection_id = ?", (cid,))]
                files = conn.execute("SELECT count(*) FROM index_files WHERE collection_id = ?", (cid,)).fetchone()[0]
                roots = conn.execute("SELECT count(*) FROM index_roots WHERE collection_id = ?", (cid,)).fetchone()[0]
                conn.execute("DELETE FROM index_collections WHERE id = ?", (cid,))
                collections = 1
            after = records.changes(conn)
        if self._vectors is not None and ids:
            self._vectors.apply(np.zeros(0, dtype=np.int64), np.zeros((0, self._vectors.dimensions), np.float32),
                                np.array(ids, dtype=np.int64), changes_before=before, changes_after=after)
            self._vectors.save()
        return RemoveReport(files, len(ids), roots, collections)

    # -- looking at it ----------------------------------------------------------------------------

    def collections(self) -> list[CollectionInfo]:
        rows = self.store.query(
            """SELECT k.name,
                      (SELECT group_concat(path, char(10)) FROM index_roots r WHERE r.collection_id = k.id),
                      (SELECT count(*) FROM index_files f WHERE f.collection_id = k.id AND f.state != 'skipped'),
                      (SELECT count(*) FROM index_documents d JOIN index_files f ON f.id = d.file_id
                        WHERE f.collection_id = k.id),
                      (SELECT count(*) FROM index_chunks c JOIN index_documents d ON d.id = c.document_id
                        JOIN index_files f ON f.id = d.file_id WHERE f.collection_id = k.id),
                      (SELECT count(*) FROM index_files f WHERE f.collection_id = k.id AND f.state = 'skipped')
               FROM index_collections k ORDER BY k.name""")
        return [CollectionInfo(r[0], tuple(sorted((r[1] or "").split("\n"))) if r[1] else (), r[2], r[3], r[4], r[5])
                for r in rows]

    def files(self, collection: str | None = None) -> list[FileInfo]:
        rows = self.store.query(
            """SELECT k.name, f.path, f.state, f.reason,
                      (SELECT count(*) FROM index_documents d WHERE d.file_id = f.id),
                      (SELECT count(*) FROM index_chunks c JOIN index_documents d ON d.id = c.document_id
                        WHERE d.file_id = f.id)
               FROM index_files f JOIN index_collections k ON k.id = f.collection_id"""
            + (" WHERE k.name = ?" if collection else "") + " ORDER BY k.name, f.path",
            (collection,) if collection else ())
        return [FileInfo(r[0], r[1], r[2], r[4], r[5], r[3]) for r in rows]

    def status(self, *, check: bool = True) -> IndexStatus:
        """Counts, skipped and partly read files with their reasons, and (``check``) the consistency of
        the keyword and vector indexes with SQLite, repairing the vector index if it disagrees."""
        name, dims = self._state()
        count = self.store.query(
            "SELECT (SELECT count(*) FROM index_files WHERE state != 'skipped'), "
            "(SELECT count(*) FROM index_documents), (SELECT count(*) FROM index_chunks), "
            "(SELECT count(*) FROM index_files WHERE state = 'pending')")[0]
        problems = self.store.query("SELECT path, state, skip_kind, reason FROM index_files "
                                    "WHERE state IN ('skipped', 'partial') ORDER BY path")
        status = IndexStatus(name, dims, self.collections(), count[0], count[1], count[2], count[3])
        for row in problems:
            item = Skipped(row["path"], row["reason"] or "", row["skip_kind"])
            (status.skipped if row["state"] == "skipped" else status.partial).append(item)
        if check and count[2] > 0:
            status.consistency = self.check()
        status.database_bytes = sum(p.stat().st_size for p in self.settings.home.glob("plait.db*") if p.is_file())
        vector_folder = self.folder / "vectors"
        if vector_folder.exists():
            status.vector_bytes = sum(p.stat().st_size for p in vector_folder.iterdir() if p.is_file())
        return status

    def check(self) -> Consistency:
        """Keyword index integrity (FTS5's own check), then the vector index against SQLite (repaired)."""
        from plait.errors import StoreError
        from plait.index.keyword import FTS_TABLES, fts_problem, rebuild_fts

        for table in FTS_TABLES:
            problem = fts_problem(self.store.connection, table)
            if problem is not None:
                with self.store.transaction() as conn:
                    rebuild_fts(conn, table)
                raise StoreError(f"the keyword index disagreed with the database ({problem}); it has been rebuilt, "
                                 "run the command again")
        return self.vectors().check()

    def rebuild_vectors(self, progress: Callable[[int, int], None] | None = None) -> Consistency:
        """Throw the vector index away and build it again from the vectors in SQLite."""
        with self._lock:
            if self._vectors is not None:
                self._vectors.reset()
            else:
                (self.folder / "vectors" / "current.json").unlink(missing_ok=True)
            self._vectors = None
            vectors = self.vectors(progress)
            assert vectors.last_open is not None
            return vectors.last_open


_indexes: weakref.WeakKeyDictionary[Runtime, Index] = weakref.WeakKeyDictionary()
_indexes_lock = threading.Lock()


def open_index(runtime: Runtime | None = None) -> Index:
    """The Index of a runtime (the default one if none is given), made once per runtime."""
    from plait.runtime import get_runtime

    rt = runtime or get_runtime()
    with _indexes_lock:
        index = _indexes.get(rt)
        if index is None:
            index = _indexes[rt] = Index(rt)
        return index
