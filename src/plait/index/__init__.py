"""The personal index: files and mail → documents → chunks → embeddings and a keyword index, in SQLite,
with a derived vector index; incremental by content hash; searched by keyword, vector or both.

Modules: ``scan`` (finding units, hashing), ``chunking``, ``ingest`` (incremental updates),
``records`` (rows), ``keyword`` (FTS5/BM25), ``vectors`` (HNSW or exact, kept in step with SQLite),
``fusion`` (RRF), ``mmr``, ``filters``, ``snippets``, ``retrieval`` (search), ``core`` (the Index).
"""

from plait.index.core import CollectionInfo, FileInfo, Index, IndexStatus, RemoveReport, open_index
from plait.index.filters import SearchFilters, make_filters
from plait.index.ingest import IngestProgress, IngestReport, Skipped
from plait.index.retrieval import Hit, Mode, SearchResults
from plait.index.vectors import Consistency

__all__ = ["CollectionInfo", "Consistency", "FileInfo", "Hit", "Index", "IndexStatus", "IngestProgress",
           "IngestReport", "Mode", "RemoveReport", "SearchFilters", "SearchResults", "Skipped", "make_filters",
           "open_index"]
