"""Embeddings with the default (or a named) embedding model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from plait.models.base import Embedder, EmbedKind
from plait.runtime import Runtime, get_runtime

if TYPE_CHECKING:
    import numpy as np


def embedder(model: str | Embedder | None = None, runtime: Runtime | None = None) -> Embedder:
    if isinstance(model, Embedder):
        return model
    rt = runtime or get_runtime()
    return rt.model(model or rt.settings.embed_model, Embedder)


def embed(texts: str | Sequence[str], *, model: str | Embedder | None = None, kind: EmbedKind = "document",
          runtime: Runtime | None = None, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Unit-length embeddings: shape (dimensions,) for one text, (n, dimensions) for a list."""
    m = embedder(model, runtime)
    if isinstance(texts, str):
        return m.embed(texts, kind=kind)
    return m.embed_many(list(texts), kind=kind, progress=progress)
