"""The index's embeddings computed by Ray actors: ``plait index add PATH --executor ray``.

Why actors and not Ray Data's ``map_batches``: the ingester produces its flushes one at a time while it
reads the person's files, leaves out texts embedded before (a lookup in its own database), and must commit
each flush in order as soon as its vectors are back. That is a stream of a few hundred texts at a time
with a bounded number in flight, not a dataset known up front; Ray Data would need the input materialised
(or a custom datasource fed from this process) and starts an actor pool per execution. A fixed set of
actors, each loading the model once, fed round-robin with a window of two flushes per actor, gives the
same pipelining with nothing between the ingester and the model.

Each actor loads the index's model from a :class:`~plait.distributed.shipping.Shipment` with this
machine's settings, and embeds a whole flush with ``embed_many`` exactly as the local path does, so the
vectors are the same bit for bit (``threads`` included: an int8 model's vectors depend on how texts are
batched, and batching follows the thread count).

Faults: when an actor's process dies, its flushes are sent again to a fresh actor
(:mod:`plait.distributed.pool`); a flush only reaches the database when its vectors are back, so a lost worker loses and
repeats nothing. If this process dies, the actors go with it and the next run embeds what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plait.distributed.cluster import connect
from plait.distributed.pool import Call, Worker, WorkerPool, room
from plait.index.executors import EmbeddingExecutor, EmbeddingJob, Progress

if TYPE_CHECKING:
    import numpy as np

    from plait.distributed.shipping import Shipment
    from plait.index.core import Index

FLUSHES_PER_WORKER = 2  # one being embedded, one waiting: the worker never idles while this process commits


class EmbedWorker(Worker):
    """A Ray actor holding one loaded embedding model."""

    def __init__(self, shipment: Shipment, model: str) -> None:
        from plait.models.base import Embedder

        super().__init__(shipment)
        self.model = self.runtime.model(model, Embedder)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "dimensions": self.model.dimensions}

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.model.embed_many(texts, kind="document")


class RayEmbedding(EmbeddingExecutor):
    """Embeds the ingester's flushes on Ray actors, ``FLUSHES_PER_WORKER`` flushes per actor in flight.

    ``workers`` actors (default: as many as the cluster has room for), each reserving ``worker_cpus`` CPUs
    (default: the ``threads`` setting, the threads its model uses). Actors start on the first flush, so a
    run with nothing new to embed starts none.
    """

    def __init__(self, index: Index, *, address: str | None = None, workers: int | None = None,
                 worker_cpus: float | None = None) -> None:
        self.index, self.address = index, address
        self.workers, self.worker_cpus = workers, worker_cpus
        self.pool: WorkerPool | None = None

    def _start(self) -> WorkerPool:
        from plait.distributed.shipping import ship

        ray = connect(self.address)
        name = self.index.model_name()
        cpus = self.worker_cpus or self.index.runtime.settings.threads
        count = room(cpus, self.workers)
        shipment = ray.put(ship(self.index.runtime, [name]))
        pool = WorkerPool(ray, EmbedWorker, (shipment, name), count=count, cpus=cpus)
        infos = pool.start(f"starting {count} embedding worker(s) for '{name}'")
        pool.check_versions(infos)
        self.index.adopt_model(name, int(infos[0]["dimensions"]))
        self.window = FLUSHES_PER_WORKER * count
        return pool

    def submit(self, texts: Sequence[str], progress: Progress | None = None) -> EmbeddingJob:
        if self.pool is None:
            self.pool = self._start()
        return _Job(self.pool.call("embed", list(texts), what=f"embedding {len(texts)} passages"), len(texts),
                    progress)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
        self.window = 0


class _Job:
    def __init__(self, call: Call, count: int, progress: Progress | None) -> None:
        self.call, self.count, self.progress = call, count, progress

    def result(self) -> np.ndarray:
        vectors: np.ndarray = self.call.result()
        if self.progress:
            self.progress(self.count)
        return vectors
