"""Embeddings with the default (or a named) embedding model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field

from plait.errors import InputError
from plait.models.base import Embedder, EmbedKind
from plait.runtime import Runtime, get_runtime
from plait.tasks.registry import Batch, Task, TaskContext, TaskRequest

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


# --- the task -----------------------------------------------------------------------------------------

MAX_TEXTS = 100_000  # per request; the server's body-size limit usually bites first


class EmbedRequest(TaskRequest):
    texts: str | list[str] = Field(description="a text, or a list of texts")
    model: str | None = Field(None, description="an embedding model (default: the embed_model setting)")
    kind: EmbedKind = Field("document", description="query for search queries (matters for E5-style models)")

    def items(self) -> list[str]:
        items = [self.texts] if isinstance(self.texts, str) else list(self.texts)
        if not items or len(items) > MAX_TEXTS:
            raise InputError(f"texts: give 1 to {MAX_TEXTS} texts")
        return items


@dataclass(frozen=True)
class Embeddings:
    model: str
    dimensions: int
    embeddings: list[list[float]]  # unit length, in the order of the texts


def _run(request: EmbedRequest, ctx: TaskContext) -> Embeddings:
    model = embedder(request.model, ctx.runtime)
    rows = model.embed_many(request.items(), kind=request.kind, progress=ctx.progress)
    return Embeddings(model.spec.name, model.dimensions, rows.tolist())


def _runner(request: EmbedRequest, runtime: Runtime) -> Callable[[list[str]], Sequence[tuple[str, list[float]]]]:
    def run(texts: list[str]) -> Sequence[tuple[str, list[float]]]:
        # Resolved on every batch: the model pool may have unloaded and reloaded the model meanwhile.
        model = embedder(request.model, runtime)
        return [(model.spec.name, row) for row in model.embed_many(texts, kind=request.kind).tolist()]
    return run


def _answer(request: EmbedRequest, results: list[tuple[str, list[float]]]) -> Embeddings:
    rows = [row for _, row in results]
    return Embeddings(results[0][0], len(rows[0]), rows)


TASK = Task(
    name="embed", summary="Embedding vectors of texts (unit length)", request=EmbedRequest, result=Embeddings,
    input="texts", scope="chat", run=_run,
    # Requests for the same model and kind of text are embedded in one batch (the query/document
    # prefix of E5-style models differs by kind, so the kinds are not mixed).
    batch=Batch(items=EmbedRequest.items, key=lambda request: f"{request.model or ''}\n{request.kind}",
                runner=_runner, answer=_answer),
    models=lambda request, settings: [request.model or settings.embed_model],
)
