"""A Runtime ties settings, the database, the catalog and the model pool together.

The CLI makes one per process; the server makes one per app (``create_app(settings)``); library users
get a default one from :func:`get_runtime`, built from the effective settings on first use.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TypeVar

from plait.models.base import Model
from plait.models.catalog import Catalog
from plait.models.loading import ModelPool
from plait.settings import Settings, load_settings
from plait.store import Store

if TYPE_CHECKING:
    from plait.security.audit import AuditEvent, AuditLog

M = TypeVar("M", bound=Model)


class Runtime:
    def __init__(self, settings: Settings | None = None, *, store: Store | None = None) -> None:
        self.settings = settings or load_settings()
        self.store = store or Store(self.settings.database_path)
        self.catalog = Catalog(self.store)
        self.pool = ModelPool(self.catalog, self.settings, audit=self._audit)
        self._audit_log: AuditLog | None = None
        self._audit_lock = threading.Lock()

    def model(self, name: str, kind: type[M]) -> M:
        """A loaded model of the given interface (``TextGenerator``, ``Embedder``…)."""
        return self.pool.get_as(name, kind)

    def _audit(self, event: AuditEvent) -> None:
        """Record what a model sent off the machine outside an HTTP request (the server records its own)."""
        from plait.security.audit import AuditLog

        with self._audit_lock:
            if self._audit_log is None:
                self._audit_log = AuditLog(self.store, background=False)  # written at once: a CLI run is short
            self._audit_log.record(event)

    def close(self) -> None:
        self.pool.close()
        self.store.close()


_default: Runtime | None = None
_default_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _default
    with _default_lock:
        if _default is None:
            _default = Runtime()
        return _default


def set_runtime(runtime: Runtime | None) -> None:
    """Replace the default runtime (tests, or a program with its own settings); closes the old one."""
    global _default
    with _default_lock:
        old, _default = _default, runtime
    if old is not None and old is not runtime:
        old.close()
