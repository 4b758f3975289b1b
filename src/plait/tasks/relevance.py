"""relevance: how close a text is to a person's interests, by embedding similarity (feed ranking)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field

from plait.errors import InputError
from plait.runtime import Runtime
from plait.tasks.embed import embedder
from plait.tasks.registry import MAX_TEXT_CHARS, Task, TaskRequest

TEXT_CHARS = 8000  # the start of a long text says what it is about; embedding all of it costs more


@dataclass(frozen=True)
class Relevance:
    score: float  # cosine similarity to the closest interest, clipped to 0-1
    interest: str  # that interest
    scores: dict[str, float]  # every interest's cosine similarity


def relevance(text: str, interests: str | Sequence[str], *, model: str | None = None,
              runtime: Runtime | None = None) -> Relevance:
    """How close ``text`` is to the closest of ``interests``, and which one it is."""
    topics = [interests] if isinstance(interests, str) else [str(t) for t in interests]
    topics = [t for t in topics if t.strip()]
    if not topics:
        raise InputError("relevance needs at least one interest (a phrase such as 'space exploration')")
    if not text.strip():
        raise InputError("relevance: the text is empty")
    emb = embedder(model, runtime)
    doc = emb.embed_many([text[:TEXT_CHARS]], kind="document")[0]
    queries = emb.embed_many(topics, kind="query")
    sims = queries @ doc
    best = int(sims.argmax())
    return Relevance(round(max(0.0, min(1.0, float(sims[best]))), 4), topics[best],
                     {t: round(float(s), 4) for t, s in zip(topics, sims, strict=True)})


class RelevanceRequest(TaskRequest):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    interests: str | list[str] = Field(description="a person's interests, e.g. ['space exploration', 'jazz']")
    model: str | None = Field(None, description="an embedding model (default: the embed_model setting)")


TASK = Task(
    name="relevance", summary="How close a text is to some interests (0-1), and to which one",
    request=RelevanceRequest, result=Relevance,
    run=lambda request, ctx: relevance(request.text, request.interests, model=request.model, runtime=ctx.runtime),
    models=lambda request, settings: [request.model or settings.embed_model],
)
