"""Reciprocal-rank fusion: one ranking from several (Cormack, Clarke & Büttcher, SIGIR 2009).

Each list contributes ``1 / (k + rank)`` to every item it ranks (ranks from 1). It needs no score
calibration between BM25 and cosine similarity, which live on unrelated scales, and an item ranked well
by both lists beats one ranked first by only one. ``k = 60`` is the value of the original paper.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

RRF_K = 60
T = TypeVar("T", bound=Hashable)


def rrf(rankings: Sequence[Sequence[T]], *, k: int = RRF_K,
        weights: Sequence[float] | None = None) -> list[tuple[T, float]]:
    """Items of all rankings with their fused score, best first (ties keep first-seen order)."""
    scores: dict[T, float] = {}
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def first_per_group(ranking: Sequence[T], group: Mapping[T, Hashable]) -> list[T]:
    """The ranking with only the best-ranked item of each group (a document's best chunk)."""
    seen: set[Hashable] = set()
    out: list[T] = []
    for item in ranking:
        g = group[item]
        if g not in seen:
            seen.add(g)
            out.append(item)
    return out
