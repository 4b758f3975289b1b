"""plait's SQLite database: the store of record for the catalog, index, workflows and runs."""

from plait.store.database import Store

__all__ = ["Store"]
