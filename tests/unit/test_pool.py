import threading
import time

import pytest

from plait.errors import CapabilityError
from plait.models.base import Embedder, TextGenerator
from plait.models.loading import ModelPool
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from tests.fakes import FakeChat


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _pool(rt: Runtime, **settings: object) -> ModelPool:
    for i in range(3):
        rt.catalog.add(ModelSpec(name=f"chat{i}", backend="fake", capabilities=("chat",), source="fake"),
                       replace=True)
    return ModelPool(rt.catalog, rt.settings.model_copy(update=settings), clock=Clock())


def test_second_get_does_not_reload(fake_models: Runtime) -> None:
    pool = _pool(fake_models)
    assert pool.get("chat0") is pool.get("chat0")


def test_lru_eviction_closes_the_oldest(fake_models: Runtime) -> None:
    pool = _pool(fake_models, max_loaded_models=2)
    first = pool.get("chat0")
    pool.get("chat1")
    pool.get("chat0")  # chat1 is now least recently used
    pool.get("chat2")
    assert pool.loaded() == ["chat0", "chat2"]
    assert isinstance(first, FakeChat) and not first.closed


def test_idle_models_are_unloaded(fake_models: Runtime) -> None:
    pool = _pool(fake_models, idle_unload_seconds=10)
    model = pool.get("chat0")
    assert isinstance(model, FakeChat)
    pool.clock.now = 11  # type: ignore[attr-defined]
    assert pool.unload_idle() == ["chat0"]
    # dropped by the pool but not closed: a caller may still be using it
    assert not model.closed and pool.loaded() == []
    pool.close()


def test_concurrent_gets_load_once(fake_models: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.models import loading

    calls = []
    real = loading.load_model

    def slow_load(*args: object, **kw: object) -> object:
        calls.append(1)
        time.sleep(0.05)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "load_model", slow_load)
    pool = _pool(fake_models)
    got = []
    threads = [threading.Thread(target=lambda: got.append(pool.get("chat1"))) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(m) for m in got}) == 1


def test_capability_is_checked(fake_models: Runtime) -> None:
    assert isinstance(fake_models.model("fake-chat", TextGenerator), TextGenerator)
    with pytest.raises(CapabilityError, match="cannot embed"):
        fake_models.model("fake-chat", Embedder)
