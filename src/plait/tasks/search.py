"""Search the personal index by keyword (BM25), meaning (vectors) or both (hybrid, the default)."""

from __future__ import annotations

import dataclasses
import time

from pydantic import Field

from plait.index.core import open_index
from plait.index.filters import SearchFilters
from plait.index.retrieval import Mode, SearchResults, retrieve
from plait.runtime import Runtime
from plait.tasks.registry import Task, TaskRequest
from plait.tasks.rerank import RERANK_DEPTH, answers_first, is_question


def search(query: str, *, k: int = 10, mode: Mode = "hybrid", filters: SearchFilters | None = None,
           per_document: bool = True, mmr: float | None = None, rerank: bool = True,
           runtime: Runtime | None = None) -> SearchResults:
    """The ``k`` best results for ``query``.

    ``per_document`` returns each document once (with its best passage); ``mmr`` (λ in [0, 1], e.g. 0.7)
    re-orders results for variety. In hybrid mode a question's results that answer it come first
    (:mod:`plait.tasks.rerank`) unless ``rerank`` is off or ``mmr`` is given. The embedding model is the
    index's own (see :mod:`plait.index.core`).
    """
    index = open_index(runtime)
    reranking = rerank and mode == "hybrid" and mmr is None and is_question(query)
    results = retrieve(index, query, k=max(k, RERANK_DEPTH) if reranking else k, mode=mode, filters=filters,
                       per_document=per_document, mmr_lambda=mmr)
    if not reranking:
        return results
    start = time.perf_counter()
    results = answers_first(index, results, k)
    return dataclasses.replace(results, seconds=results.seconds + time.perf_counter() - start)


class SearchRequest(TaskRequest):
    query: str = Field(min_length=1, max_length=2000, description="words or a question; \"quoted phrases\" "
                       "rank first where they appear as they are")
    k: int = Field(10, ge=1, le=100, description="number of results")
    mode: Mode = Field("hybrid", description="hybrid (words and meaning), keyword (BM25) or vector")
    filters: SearchFilters | None = None
    per_document: bool = Field(True, description="one result per document (its best passage)")
    mmr: float | None = Field(None, ge=0, le=1, description="re-order for variety (λ, e.g. 0.7)")
    rerank: bool = Field(True, description="for a question in hybrid mode, put the results that answer it first")


# The index changes as files are added: search answers are never cached.
TASK = Task(
    name="search", summary="Search the personal index by keyword, meaning or both", request=SearchRequest,
    result=SearchResults, input="query", scope="index", cacheable=lambda request: False,
    run=lambda request, ctx: search(request.query, k=request.k, mode=request.mode, filters=request.filters,
                                    per_document=request.per_document, mmr=request.mmr, rerank=request.rerank,
                                    runtime=ctx.runtime),
)
