"""The vector index: nearest chunks to a query embedding, derived from the vectors in SQLite.

SQLite (``index_vectors``) holds every chunk's embedding; this module keeps an approximate
nearest-neighbour graph over them (hnswlib's HNSW: under a millisecond per query at 100,000 chunks, with
~0.99 recall of the exact top 50, where exact search over the matrix takes ~40 ms; see
``bench/index_vectors.py``) and saves it to a file so a new process does not rebuild it. Without hnswlib
installed, an exact matrix search does the same job more slowly.

The file is never trusted: it records the value of ``index_state.changes`` (bumped by a trigger on every
chunk insert and delete) it matches, and at open, and before each search, a different value means
SQLite moved on (another process indexed, or this one crashed before saving). The chunk ids of SQLite
and of the index are then compared and the difference applied: missing vectors are read from SQLite and
added, vanished ones are removed. A missing or unreadable file is the same repair starting from empty.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import StoreError

if TYPE_CHECKING:
    import numpy as np

    from plait.store import Store

log = logging.getLogger(__name__)

HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
HNSW_EF_SEARCH = 96
# Up to this many chunks a search compares the query with every vector (a 5,000 × 384 matrix product takes
# about a millisecond): a small index answers exactly, and the same from a graph built in any order (a
# restored backup, a repaired index), where HNSW may miss a neighbour among near-duplicate notes.
HNSW_EXHAUSTIVE = 5_000
# A filter leaving this many chunks or fewer is searched exactly, from the vectors in SQLite: HNSW
# with a very selective filter wanders the graph for long and may miss.
EXACT_FILTER_LIMIT = 10_000
REPAIR_BATCH = 5_000
STATE_FILE = "current.json"


class Ann(ABC):
    """An in-memory nearest-neighbour index over unit vectors, keyed by chunk id (inner product)."""

    kind: str

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def remove(self, ids: np.ndarray) -> None: ...

    @abstractmethod
    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        """Up to ``k`` (id, cosine) pairs, best first."""

    @abstractmethod
    def ids(self) -> np.ndarray: ...

    @abstractmethod
    def save(self, prefix: Path) -> list[Path]: ...

    def __len__(self) -> int:
        return len(self.ids())


class ExactAnn(Ann):
    """Exact search over a matrix: no extra dependency, linear in the number of chunks."""

    kind = "exact"

    def __init__(self, dimensions: int) -> None:
        import numpy as np

        self.dimensions = dimensions
        self._vectors = np.zeros((0, dimensions), dtype=np.float32)
        self._ids = np.zeros(0, dtype=np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        import numpy as np

        self._ids = np.concatenate([self._ids, ids.astype(np.int64)])
        self._vectors = np.concatenate([self._vectors, vectors.astype(np.float32)])

    def remove(self, ids: np.ndarray) -> None:
        import numpy as np

        keep = ~np.isin(self._ids, ids)
        self._ids, self._vectors = self._ids[keep], self._vectors[keep]

    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        import numpy as np

        ids, vectors = self._ids, self._vectors
        if allowed is not None:
            mask = np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            ids, vectors = ids[mask], vectors[mask]
        return top_k(ids, vectors @ query, k)

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def save(self, prefix: Path) -> list[Path]:

        paths = [prefix.with_suffix(".ids.npy"), prefix.with_suffix(".vectors.npy")]
        _save_array(paths[0], self._ids)
        _save_array(paths[1], self._vectors)
        return paths

    @classmethod
    def load(cls, prefix: Path, dimensions: int) -> ExactAnn:

        ann = cls(dimensions)
        ann._ids = _load_array(prefix.with_suffix(".ids.npy"))
        ann._vectors = _load_array(prefix.with_suffix(".vectors.npy"))
        if ann._vectors.shape != (len(ann._ids), dimensions):
            raise ValueError("ids and vectors disagree")
        return ann


class HnswAnn(Ann):
    """hnswlib's HNSW graph. Deleted chunks are marked and their slots reused by later additions."""

    kind = "hnsw"

    def __init__(self, dimensions: int, threads: int, index: Any = None, live: set[int] | None = None) -> None:
        import hnswlib

        self.dimensions = dimensions
        self._live: set[int] = live or set()
        if index is None:
            index = hnswlib.Index(space="ip", dim=dimensions)
            index.init_index(max_elements=1024, M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION,
                             allow_replace_deleted=True)
        index.set_num_threads(threads)
        self._index = index
        self._matrix: tuple[np.ndarray, np.ndarray] | None = None  # (ids, vectors) of a small index

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        free = self._index.get_max_elements() - self._index.get_current_count()
        deleted = self._index.get_current_count() - len(self._live)
        if len(ids) > free + deleted:
            needed = len(self._live) + len(ids)
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        self._index.add_items(vectors, ids, replace_deleted=deleted > 0)
        self._live.update(int(i) for i in ids)
        self._matrix = None

    def remove(self, ids: np.ndarray) -> None:
        for i in ids:
            i = int(i)
            if i in self._live:
                self._index.mark_deleted(i)
                self._live.discard(i)
        self._matrix = None

    def search(self, query: np.ndarray, k: int, allowed: set[int] | None = None) -> list[tuple[int, float]]:
        available = len(self._live) if allowed is None else len(allowed)
        k = min(k, available)
        if k <= 0:
            return []
        if len(self._live) <= HNSW_EXHAUSTIVE:
            return self._exhaustive(query, k, allowed)
        self._index.set_ef(max(HNSW_EF_SEARCH, 2 * k))
        flt: Callable[[int], bool] | None = None
        if allowed is not None:
            flt = allowed.__contains__
        while k > 0:
            try:
                labels, distances = self._index.knn_query(query, k=k, filter=flt)
                break
            except RuntimeError:
                # Fewer than k reachable under the filter: ask for fewer.
                k //= 2
        else:
            return []
        # hnswlib's inner-product "distance" is 1 - dot.
        return [(int(label), 1.0 - float(d)) for label, d in zip(labels[0], distances[0], strict=True)]

    def _exhaustive(self, query: np.ndarray, k: int, allowed: set[int] | None) -> list[tuple[int, float]]:
        import numpy as np

        if self._matrix is None:
            ids = np.sort(self.ids())
            self._matrix = (ids, np.asarray(self._index.get_items(ids), dtype=np.float32).reshape(len(ids), -1))
        ids, vectors = self._matrix
        if allowed is not None:
            keep = np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            ids, vectors = ids[keep], vectors[keep]
        return top_k(ids, vectors @ query, k)

    def ids(self) -> np.ndarray:
        import numpy as np

        return np.fromiter(self._live, dtype=np.int64, count=len(self._live))

    def save(self, prefix: Path) -> list[Path]:

        from plait.security.keys import keys_for
        from plait.security.storage import write_bytes

        paths = [prefix.with_suffix(".hnsw"), prefix.with_suffix(".ids.npy")]
        if keys_for(prefix) is None:
            self._index.save_index(str(paths[0]))
        else:
            # hnswlib writes its files itself, in the clear; in an encrypted home the graph is pickled to
            # memory (hnswlib's own serialisation, as complete as save_index) and sealed instead.
            write_bytes(paths[0], pickle.dumps(self._index, protocol=5))
        _save_array(paths[1], self.ids())
        return paths

    @classmethod
    def load(cls, prefix: Path, dimensions: int, threads: int) -> HnswAnn:
        import hnswlib

        from plait.security.storage import read_bytes, sealed

        live = {int(i) for i in _load_array(prefix.with_suffix(".ids.npy"))}
        graph = prefix.with_suffix(".hnsw")
        if sealed(graph):
            index = _GraphUnpickler(io.BytesIO(read_bytes(graph))).load()
            if not isinstance(index, hnswlib.Index) or index.dim != dimensions:
                raise ValueError("the sealed graph is not an index of this dimension")
        else:
            index = hnswlib.Index(space="ip", dim=dimensions)
            index.load_index(str(graph), allow_replace_deleted=True)
        if index.get_current_count() < len(live):
            raise ValueError("the graph holds fewer vectors than its id list")
        return cls(dimensions, threads, index, live)


class _GraphUnpickler(pickle.Unpickler):
    """Only what a pickled hnswlib index holds. The file is authenticated, so only this home's key could
    have written it; refusing any other class is a second lock on the same door."""

    ALLOWED = {("hnswlib", "Index"), ("numpy", "dtype"), ("numpy._core.numeric", "_frombuffer"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"unexpected {module}.{name} in a vector index file")
        return super().find_class(module, name)


def _save_array(path: Path, array: np.ndarray) -> None:
    import numpy as np

    from plait.security.storage import write_bytes

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_bytes(path, buffer.getvalue())


def _load_array(path: Path) -> np.ndarray:
    import numpy as np

    from plait.security.storage import read_bytes

    loaded: np.ndarray = np.load(io.BytesIO(read_bytes(path)), allow_pickle=False)
    return loaded


def top_k(ids: np.ndarray, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    import numpy as np

    if len(ids) == 0 or k <= 0:
        return []
    if len(ids) > k:
        part = np.argpartition(-scores, k - 1)[:k]
    else:
        part = np.arange(len(ids))
    order = part[np.argsort(-scores[part], kind="stable")]
    return [(int(ids[i]), float(scores[i])) for i in order]


def hnsw_available() -> bool:
    try:
        import hnswlib  # noqa: F401
    except ImportError:
        return False
    return True


def vectors_from_blobs(blobs: list[bytes], dimensions: int) -> np.ndarray:
    import numpy as np

    if not blobs:
        return np.zeros((0, dimensions), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dimensions)


@dataclass(frozen=True)
class Consistency:
    """How the vector index compares with SQLite, and what opening it had to do."""

    chunks: int  # in SQLite
    vectors: int | None  # in SQLite (one per chunk); counted by check() only: it scans the vector table
    indexed: int  # in the vector index
    missing: int  # chunks the index lacked (added)
    extra: int  # ids the index had that SQLite does not (removed)
    rebuilt: bool  # the saved index was missing, unreadable or for another model
    kind: str  # hnsw | exact

    @property
    def consistent(self) -> bool:
        return self.chunks == self.indexed and self.vectors in (None, self.chunks)


class VectorIndex:
    """The derived vector index of one database, kept in step with it. Thread-safe."""

    def __init__(self, store: Store, folder: Path, *, model: str, dimensions: int, threads: int = 1,
                 exact: bool | None = None) -> None:
        self.store, self.folder = store, folder
        self.model, self.dimensions, self.threads = model, dimensions, threads
        self.exact = (not hnsw_available()) if exact is None else exact
        self._lock = threading.RLock()
        self._ann: Ann | None = None
        self._synced = -1  # the value of index_state.changes the in-memory index matches
        self.last_open: Consistency | None = None

    # -- opening, checking, repairing -------------------------------------------------------------

    def _new_ann(self) -> Ann:
        return ExactAnn(self.dimensions) if self.exact else HnswAnn(self.dimensions, self.threads)

    def _changes(self) -> int:
        return int(self.store.query("SELECT changes FROM index_state WHERE id = 1")[0][0])

    def _load_saved(self) -> tuple[Ann, int] | None:
        state_path = self.folder / STATE_FILE
        try:
            state = json.loads(state_path.read_text())
            if (state.get("model"), state.get("dimensions"), state.get("kind")) != \
                    (self.model, self.dimensions, "exact" if self.exact else "hnsw"):
                return None
            prefix = self.folder / state["token"]
            ann: Ann = (ExactAnn.load(prefix, self.dimensions) if self.exact
                        else HnswAnn.load(prefix, self.dimensions, self.threads))
            return ann, int(state["changes"])
        except FileNotFoundError:
            return None
        except Exception as exc:  # noqa: BLE001 - any damage to a derived file means: rebuild it
            log.warning("vector index in %s is unreadable (%s); rebuilding it from the database", self.folder, exc)
            return None

    def open(self, progress: Callable[[int, int], None] | None = None) -> Consistency:
        """Load the saved index, check it against SQLite, repair (or rebuild) it, save if it changed."""
        with self._lock:
            saved = self._load_saved()
            rebuilt = saved is None
            self._ann, self._synced = saved if saved else (self._new_ann(), -1)
            missing, extra = self._repair(progress, force=True)
            if missing or extra:
                self.save()
            self.last_open = self._consistency(missing, extra, rebuilt, count_vectors=False)
            return self.last_open

    def _consistency(self, missing: int, extra: int, rebuilt: bool, *, count_vectors: bool = True) -> Consistency:
        assert self._ann is not None
        chunks = int(self.store.query("SELECT count(*) FROM index_chunks")[0][0])
        vectors = (int(self.store.query("SELECT count(*) FROM index_vectors")[0][0]) if count_vectors else None)
        return Consistency(chunks, vectors, len(self._ann), missing, extra, rebuilt, self._ann.kind)

    def check(self) -> Consistency:
        """Compare with SQLite now (repairing any difference) and report."""
        with self._lock:
            if self._ann is None:
                return self.open()
            missing, extra = self._repair(None, force=True)
            if missing or extra:
                self.save()
            return self._consistency(missing, extra, False)

    def _repair(self, progress: Callable[[int, int], None] | None, *, force: bool = False) -> tuple[int, int]:
        """Bring the in-memory index to SQLite's chunk ids; returns (added, removed)."""
        import numpy as np

        assert self._ann is not None
        changes = self._changes()
        if changes == self._synced and not force:
            return 0, 0
        # Chunk ids come from the small index of index_chunks rather than a scan of the wide vector
        # table: chunks and their vectors are inserted in one transaction and deleted by cascade.
        db_ids = np.array([r[0] for r in self.store.query(
            "SELECT id FROM index_chunks INDEXED BY index_chunks_document")], dtype=np.int64)
        have = self._ann.ids()
        if changes == self._synced and len(have) == len(db_ids):
            return 0, 0  # the count check catches a file saved at the same `changes` by another database
        missing = np.setdiff1d(db_ids, have, assume_unique=True)
        extra = np.setdiff1d(have, db_ids, assume_unique=True)
        if len(extra):
            self._ann.remove(extra)
        for start in range(0, len(missing), REPAIR_BATCH):
            batch = missing[start:start + REPAIR_BATCH]
            marks = ",".join("?" * len(batch))
            rows = self.store.query(f"SELECT chunk_id, vector FROM index_vectors WHERE chunk_id IN ({marks})",
                                    tuple(int(i) for i in batch))
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            self._ann.add(ids, self._decode([r[1] for r in rows]))
            if progress:
                progress(min(start + REPAIR_BATCH, len(missing)), len(missing))
        self._synced = changes
        return len(missing), len(extra)

    def _decode(self, blobs: list[bytes]) -> np.ndarray:
        try:
            return vectors_from_blobs(blobs, self.dimensions)
        except ValueError as exc:
            raise StoreError(f"stored embeddings are not {self.dimensions}-dimensional; rebuild the index with "
                             "`plait index rebuild`") from exc

    def _ensure(self) -> Ann:
        if self._ann is None:
            self.open()
        else:
            self._repair(None)
        assert self._ann is not None
        return self._ann

    def sync(self) -> None:
        """Catch up with changes other processes made to SQLite (cheap when there are none)."""
        with self._lock:
            self._ensure()

    # -- updates by this process ------------------------------------------------------------------

    def apply(self, added_ids: np.ndarray, added: np.ndarray, removed_ids: np.ndarray, *,
              changes_before: int, changes_after: int) -> None:
        """Record one committed transaction of this process: the ids it added and removed.

        ``changes_before``/``after`` are ``index_state.changes`` read inside that transaction; when the
        index was in step before it, it is in step after it, without comparing ids.
        """
        with self._lock:
            if self._ann is None:
                return  # not loaded yet: opening will read everything from SQLite
            if len(removed_ids):
                self._ann.remove(removed_ids)
            if len(added_ids):
                self._ann.add(added_ids, added)
            if self._synced == changes_before:
                self._synced = changes_after

    def save(self) -> None:
        """Write the index (new files, then the pointer to them, then remove the old ones)."""
        with self._lock:
            if self._ann is None:
                return
            # The database's commits reach the disk first (a checkpoint syncs the WAL): after a power cut the
            # saved file is never ahead of the database, whose chunk ids it could otherwise confuse with
            # ids the database hands out again.
            self.store.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            self.folder.mkdir(parents=True, exist_ok=True)
            token = uuid.uuid4().hex[:12]
            written = self._ann.save(self.folder / token)
            state = {"token": token, "changes": self._synced, "model": self.model,
                     "dimensions": self.dimensions, "kind": self._ann.kind, "count": len(self._ann)}
            try:
                previous = json.loads((self.folder / STATE_FILE).read_text()).get("token")
            except (OSError, ValueError):
                previous = None
            tmp = self.folder / f"{STATE_FILE}.{token}.tmp"
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.folder / STATE_FILE)
            # Remove the files the pointer named before, and leftovers of crashed saves; not the files of
            # a save another process is writing right now (they are recent and not yet named).
            keep = {p.name for p in written} | {STATE_FILE}
            now = time.time()
            for path in self.folder.iterdir():
                if path.name in keep:
                    continue
                try:
                    stale = now - path.stat().st_mtime > 3600
                except FileNotFoundError:  # removed by another process meanwhile
                    continue
                if stale or (previous and path.name.startswith(previous)):
                    path.unlink(missing_ok=True)

    def reset(self) -> None:
        """Forget the index (another model, or a full rebuild): the next use rebuilds from SQLite."""
        with self._lock:
            self._ann, self._synced = None, -1
            (self.folder / STATE_FILE).unlink(missing_ok=True)

    # -- search -----------------------------------------------------------------------------------

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest to ``query`` (unit vector), optionally among ``allowed`` ids only."""
        with self._lock:
            ann = self._ensure()
            if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
                return self._exact_among(query, allowed, k)
            return ann.search(query, k, None if allowed is None else {int(i) for i in allowed})

    def _exact_among(self, query: np.ndarray, allowed: np.ndarray, k: int) -> list[tuple[int, float]]:
        import numpy as np

        if len(allowed) == 0:
            return []
        ids: list[int] = []
        blobs: list[bytes] = []
        values = [int(i) for i in allowed]
        for start in range(0, len(values), 900):  # stay under SQLite's bound-parameter limit
            batch = values[start:start + 900]
            rows = self.store.query(
                f"SELECT chunk_id, vector FROM index_vectors WHERE chunk_id IN ({','.join('?' * len(batch))})",
                tuple(batch))
            ids.extend(r[0] for r in rows)
            blobs.extend(r[1] for r in rows)
        vectors = self._decode(blobs)
        return top_k(np.array(ids, dtype=np.int64), vectors @ query, k)

    def vectors_of(self, ids: list[int]) -> dict[int, np.ndarray]:
        """The stored embeddings of some chunks (for MMR)."""
        if not ids:
            return {}
        rows = self.store.query(
            f"SELECT chunk_id, vector FROM index_vectors WHERE chunk_id IN ({','.join('?' * len(ids))})",
            tuple(ids))
        vectors = self._decode([r[1] for r in rows])
        return {int(r[0]): vectors[i] for i, r in enumerate(rows)}
