"""Search the personal index by keyword (BM25), meaning (vectors) or both (hybrid, the default)."""

from __future__ import annotations

from plait.index.core import open_index
from plait.index.filters import SearchFilters
from plait.index.retrieval import Mode, SearchResults, retrieve
from plait.runtime import Runtime


def search(query: str, *, k: int = 10, mode: Mode = "hybrid", filters: SearchFilters | None = None,
           per_document: bool = True, mmr: float | None = None, runtime: Runtime | None = None) -> SearchResults:
    """The ``k`` best results for ``query``.

    ``per_document`` returns each document once (with its best passage); ``mmr`` (λ in [0, 1], e.g. 0.7)
    re-orders results for variety. The embedding model is the index's own (see :mod:`plait.index.core`).
    """
    return retrieve(open_index(runtime), query, k=k, mode=mode, filters=filters, per_document=per_document,
                    mmr_lambda=mmr)
