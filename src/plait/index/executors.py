"""Where the ingester's embeddings are computed: in this process, or somewhere else (a Ray cluster).

The ingester reads and chunks documents itself, gathers them into flushes of a few hundred chunks, and
hands each flush's texts to an :class:`EmbeddingExecutor`. An executor returns a job at once; the ingester
keeps up to ``window`` jobs waiting while it reads on, collects them in the order it submitted them, and
commits each flush to SQLite only when its vectors are back. So whatever runs the model, the index is
written by this process, in order, one document per transaction: a job lost with its worker or with this
process leaves nothing half-written, and the next run embeds only what is missing.

:class:`LocalEmbedding` (``window`` 0: each flush is embedded before the next one is read) is what
``plait index add`` has always done. The Ray executor lives in :mod:`plait.distributed.ray_embedding`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np

    from plait.models.base import Embedder

Progress = Callable[[int], None]


class EmbeddingJob(Protocol):
    def result(self) -> np.ndarray:
        """The texts' vectors, (n, dimensions) float32 unit rows in the submitted order; blocks until done."""
        ...


class Done:
    """A job whose vectors are already here."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def result(self) -> np.ndarray:
        return self.vectors


class EmbeddingExecutor(ABC):
    """Embeds the texts of one flush. One abstract method; ``window`` says how far the ingester may run
    ahead of the vectors it is waiting for."""

    window: int = 0  # flushes that may wait for their vectors while the ingester reads on

    @abstractmethod
    def submit(self, texts: Sequence[str], progress: Progress | None = None) -> EmbeddingJob:
        """Start embedding ``texts`` (as documents); ``progress`` may be told how many are done."""

    def close(self) -> None:  # noqa: B027 - the local executor holds nothing
        """Release what the executor started (workers, connections). Called once the run is over."""


class EmbedderSource(Protocol):
    def embedder(self) -> Embedder: ...


class LocalEmbedding(EmbeddingExecutor):
    """The index's own embedding model, in this process: each flush embedded when it is submitted."""

    def __init__(self, index: EmbedderSource) -> None:
        self.index = index

    def submit(self, texts: Sequence[str], progress: Progress | None = None) -> EmbeddingJob:
        return Done(self.index.embedder().embed_many(list(texts), kind="document", progress=progress))

