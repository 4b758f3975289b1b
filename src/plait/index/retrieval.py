"""Retrieval: keyword, vector or hybrid search over the index, with filters, MMR and snippets.

Hybrid search runs both searches for a pool of candidates each, scores every candidate on both
(cosine similarity and BM25, fused as in :mod:`plait.index.fusion`), optionally re-orders the pool for
variety (MMR), and returns the top ``k`` with their documents' metadata and a highlighted snippet. By
default results are documents (each one's best passage); ``per_document=False`` returns passages, several
per document if they rank.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from plait.errors import InputError
from plait.index.filters import JOINS, SearchFilters
from plait.index.fusion import VECTOR_WEIGHT, best_per_group, convex
from plait.index.keyword import fts_query, keyword_search
from plait.index.snippets import Snippet, snippets

if TYPE_CHECKING:
    import numpy as np

    from plait.index.core import Index

Mode = Literal["hybrid", "keyword", "vector"]
MODES: tuple[Mode, ...] = ("hybrid", "keyword", "vector")
CANDIDATES = 50  # per search, before fusion: deep enough that a document ranked ~30th by one still counts
MAX_QUERY_CHARS = 4000


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float  # the ranking score of the mode: fused (see plait.index.fusion), BM25, or cosine similarity
    chunk_id: int
    document_id: int
    collection: str
    path: str
    source: str  # the path, or "path#message" for a message of a mailbox
    kind: str
    title: str | None
    date: str | None
    sender: str | None
    heading: str | None
    position: int  # the passage's place in its document (0 = first)
    text: str
    snippet: Snippet
    keyword_rank: int | None  # 1-based rank in the keyword results, if it was there
    vector_rank: int | None
    bm25: float | None
    similarity: float | None  # cosine similarity to the query (None in keyword mode)
    metadata: dict[str, str]
    answer: float | None = None  # how likely it answers a question (plait.tasks.rerank), when re-ranked


@dataclass(frozen=True)
class SearchResults:
    query: str
    mode: Mode
    hits: list[Hit]
    seconds: float


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="plait-query")
        return _pool


def _document_of(index: Index, chunk_ids: set[int]) -> dict[int, int]:
    if not chunk_ids:
        return {}
    ids = list(chunk_ids)
    rows = index.store.query(f"SELECT id, document_id FROM index_chunks WHERE id IN ({','.join('?' * len(ids))})",
                             tuple(ids))
    return {int(r[0]): int(r[1]) for r in rows}


def _allowed(index: Index, filters: SearchFilters) -> np.ndarray:
    import numpy as np

    where, params = filters.sql()
    rows = index.store.query(f"SELECT c.id FROM index_chunks c {JOINS} WHERE {where}", tuple(params))
    return np.array([r[0] for r in rows], dtype=np.int64)


def retrieve(index: Index, query: str, *, k: int = 10, mode: Mode = "hybrid", filters: SearchFilters | None = None,
             per_document: bool = True, mmr_lambda: float | None = None, candidates: int = CANDIDATES,
             vector_weight: float = VECTOR_WEIGHT) -> SearchResults:
    import numpy as np

    start = time.perf_counter()
    query = query.strip()
    if not query:
        raise InputError("the search query is empty; give some words to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(f"the query is {len(query)} characters; keep it under {MAX_QUERY_CHARS}")
    if mode not in MODES:
        raise InputError(f"unknown search mode '{mode}'; use one of {', '.join(MODES)}")
    if k < 1:
        raise InputError("k (the number of results) must be at least 1")
    if mmr_lambda is not None and not 0.0 <= mmr_lambda <= 1.0:
        raise InputError("the MMR λ must be between 0 (most varied) and 1 (most relevant)")
    filters = filters or SearchFilters()
    pool = max(candidates, 3 * k)

    query_vector: np.ndarray | None = None
    vector: list[tuple[int, float]] = []
    embedding = None
    if mode != "keyword" and index.store.query("SELECT 1 FROM index_chunks LIMIT 1"):
        # The query is embedded on another thread while FTS5 searches: both release the GIL.
        embedding = _executor().submit(index.embedder().embed, query, "query")
    keyword = keyword_search(index.store.connection, query, pool, filters) if mode != "vector" else []
    if embedding is not None:
        query_vector = embedding.result()
        allowed = None if filters.empty else _allowed(index, filters)
        vector = index.vectors().search(query_vector, pool, allowed)

    kw_ids = [h.chunk_id for h in keyword]
    vec_ids = [cid for cid, _ in vector]
    bm25 = {h.chunk_id: h.bm25 for h in keyword}
    similarity = dict(vector)
    doc_of = _document_of(index, set(kw_ids) | set(vec_ids))
    kw_ids = [c for c in kw_ids if c in doc_of]  # a chunk deleted since the search ran
    vec_ids = [c for c in vec_ids if c in doc_of]

    if mode == "hybrid":
        if query_vector is not None:  # keyword candidates the vector search did not return: their cosine
            _complete(index, query_vector, [c for c in kw_ids if c not in similarity], similarity)
        pooled = {c: similarity.get(c, 0.0) for c in dict.fromkeys(vec_ids + kw_ids)}
        ranked = convex(pooled, {c: bm25[c] for c in kw_ids}, vector_weight=vector_weight)
    elif mode == "keyword":
        ranked = [(c, bm25[c]) for c in kw_ids]
    else:
        ranked = [(c, similarity[c]) for c in vec_ids]
    if per_document:
        # A document scores as its best passage, which is the one shown.
        ranked = best_per_group(ranked, doc_of)

    if mmr_lambda is not None and len(ranked) > 1:
        from plait.index.mmr import mmr

        pool_items = ranked[:pool]
        stored = index.vectors().vectors_of([c for c, _ in pool_items])
        pool_items = [(c, s) for c, s in pool_items if c in stored]
        if pool_items:
            matrix = np.stack([stored[c] for c, _ in pool_items])
            order = mmr([s for _, s in pool_items], matrix, k, mmr_lambda)
            ranked = [pool_items[i] for i in order]
    ranked = ranked[:k]

    if query_vector is not None:  # cosine for hits the vector search did not rank (a relevance signal)
        _complete(index, query_vector, [c for c, _ in ranked if c not in similarity], similarity)
    hits = _hydrate(index, query, ranked, kw_ids, vec_ids, bm25, similarity)
    from plait.security.audit import note_passages

    note_passages([h.chunk_id for h in hits])  # the audit log records which passages a request read
    return SearchResults(query, mode, hits, time.perf_counter() - start)


def _complete(index: Index, query_vector: np.ndarray, chunk_ids: list[int], similarity: dict[int, float]) -> None:
    """Add the cosine similarity of ``chunk_ids`` to the query, from their stored vectors."""
    for c, v in index.vectors().vectors_of(chunk_ids).items():
        similarity[c] = float(v @ query_vector)


def _hydrate(index: Index, query: str, ranked: list[tuple[int, float]], kw_ids: list[int], vec_ids: list[int],
             bm25: dict[int, float], similarity: dict[int, float]) -> list[Hit]:
    if not ranked:
        return []
    ids = [c for c, _ in ranked]
    rows = index.store.query(
        "SELECT c.id, c.document_id, c.position, c.heading, c.text, d.source, d.kind, d.title, d.date, d.sender, "
        "d.metadata, f.path, k.name AS collection "
        f"FROM index_chunks c {JOINS} WHERE c.id IN ({','.join('?' * len(ids))})", tuple(ids))
    by_id = {int(r["id"]): r for r in rows}
    texts = {c: by_id[c]["text"] for c in ids if c in by_id}
    marked = snippets(index.store.connection, fts_query(query), texts)
    kw_rank = {c: i for i, c in enumerate(kw_ids, start=1)}
    vec_rank = {c: i for i, c in enumerate(vec_ids, start=1)}
    hits: list[Hit] = []
    for c, score in ranked:
        r = by_id.get(c)
        if r is None:
            continue
        hits.append(Hit(
            rank=len(hits) + 1, score=score, chunk_id=c, document_id=int(r["document_id"]),
            collection=r["collection"], path=r["path"], source=r["source"], kind=r["kind"], title=r["title"],
            date=r["date"], sender=r["sender"], heading=r["heading"], position=int(r["position"]), text=r["text"],
            snippet=marked[c], keyword_rank=kw_rank.get(c), vector_rank=vec_rank.get(c), bm25=bm25.get(c),
            similarity=similarity.get(c), metadata=json.loads(r["metadata"] or "{}"),
        ))
    return hits
