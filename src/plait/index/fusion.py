"""Fusing keyword and vector results into one ranking.

Hybrid search scores each candidate by a convex combination of its cosine similarity to the query and
its BM25 score divided by the best BM25 of the query's keyword results (so 1.0 for the best keyword
match, whatever the scale of BM25, which grows with the query's length and rarity of its words):

    score = w · cosine + (1 − w) · BM25 / max BM25

A candidate missing from the keyword results has BM25 0; one missing from the vector results has its
cosine read from its stored vector, so every candidate is scored on both signals. Unlike reciprocal-rank
fusion, which sees only ranks, this keeps how far apart the candidates are: a document far ahead in one
list is not pulled level with one ranked second by both. On known-item search over real newsgroup
posts it lifted MRR@10 from RRF's 0.56–0.59 to 0.57–0.65, above both single searches, where RRF
had been no better than the best of them (``bench/index.py``, which chose ``VECTOR_WEIGHT`` there:
the newsgroup posts are the data it is chosen on; the Lee news articles, the data it is reported on).

``rrf`` (Cormack, Clarke & Büttcher, SIGIR 2009) stays for fusing plain rankings without scores.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

RRF_K = 60
VECTOR_WEIGHT = 0.8
T = TypeVar("T", bound=Hashable)


def convex(similarity: Mapping[T, float], bm25: Mapping[T, float], *,
           vector_weight: float = VECTOR_WEIGHT) -> list[tuple[T, float]]:
    """Items of ``similarity`` (cosine for every candidate) scored with their ``bm25`` (missing: 0),
    best first (ties keep the order of ``similarity``)."""
    top = max(bm25.values(), default=0.0)
    scale = 1.0 / top if top > 0 else 0.0
    scores = {item: vector_weight * cos + (1.0 - vector_weight) * bm25.get(item, 0.0) * scale
              for item, cos in similarity.items()}
    return sorted(scores.items(), key=lambda pair: -pair[1])


def rrf(rankings: Sequence[Sequence[T]], *, k: int = RRF_K,
        weights: Sequence[float] | None = None) -> list[tuple[T, float]]:
    """Items of all rankings with their fused score, best first (ties keep first-seen order)."""
    scores: dict[T, float] = {}
    for n, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[n]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def best_per_group(scores: Sequence[tuple[T, float]], group: Mapping[T, Hashable]) -> list[tuple[T, float]]:
    """The (item, score) ranking with only the best-scored item of each group (a document's best chunk)."""
    seen: set[Hashable] = set()
    out: list[tuple[T, float]] = []
    for item, score in sorted(scores, key=lambda pair: -pair[1]):
        g = group[item]
        if g not in seen:
            seen.add(g)
            out.append((item, score))
    return out


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
