"""Workflow helpers that are not model tasks, callable as steps like tasks (``task: read``):

- ``read``: a file into text and metadata with plait's readers (folder triggers give paths, not text);
- ``relevance``: how close a text is to a person's interests, by embedding similarity (feed ranking).

(Scheduling around a calendar is the ``plan`` task's.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plait.errors import InputError
from plait.runtime import Runtime


def read(path: str, *, max_chars: int = 200_000) -> dict[str, Any]:
    """The first document of ``path`` (text capped at ``max_chars``), with its title, kind and metadata."""
    from plait.readers.document import read_document

    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p} no longer exists (moved or deleted after it was seen)")
    doc = read_document(p)
    return {"text": doc.text[:max_chars], "title": doc.title or p.stem, "kind": doc.kind, "source": doc.source,
            "metadata": dict(doc.metadata), "chars": len(doc.text), "truncated": len(doc.text) > max_chars}


def relevance(text: str, interests: str | Sequence[str], *, model: str | None = None,
              runtime: Runtime | None = None) -> dict[str, Any]:
    """Cosine similarity between ``text`` and the closest of ``interests`` (clipped to 0-1), and which one."""
    from plait.tasks.embed import embedder

    topics = [interests] if isinstance(interests, str) else [str(t) for t in interests]
    topics = [t for t in topics if t.strip()]
    if not topics:
        raise InputError("relevance needs at least one interest (a phrase such as 'space exploration')")
    if not text.strip():
        raise InputError("relevance: the text is empty")
    emb = embedder(model, runtime)
    doc = emb.embed_many([text[:8000]], kind="document")[0]
    queries = emb.embed_many(topics, kind="query")
    sims = queries @ doc
    best = int(sims.argmax())
    return {"score": round(max(0.0, min(1.0, float(sims[best]))), 4), "interest": topics[best],
            "scores": {t: round(float(s), 4) for t, s in zip(topics, sims, strict=True)}}
