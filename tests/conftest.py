"""Shared fixtures.

Every test gets its own temporary PLAIT_HOME and a fresh default runtime, so tests never see a user's
settings, database or models. Unit tests register fake models (``fake_models``); integration tests
(marked ``model``) use the real packaged models, with one shared home per session so a derived model
(e.g. minilm-q8) is built once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.runtime import Runtime, set_runtime
from plait.settings import load_settings
from tests.fakes import fake_runtime

pytest_plugins = ["tests.skip_guard"]

# Tests never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Nor the keyring of the machine they run on (keyring's documented switch; tests that need one install a fake).
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
# Homes are encrypted by default, as a user's are: every test's home gets this 256-bit master key (given as
# hex, so no passphrase stretching runs per test).
TEST_KEY = "5e" * 32
os.environ["PLAIT_KEY"] = TEST_KEY  # for homes made at import time (schemathesis builds its app then)


@pytest.fixture(scope="session")
def shared_models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plait-models-home")


@pytest.fixture(autouse=True)
def plait_home(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               shared_models_home: Path) -> Iterator[Path]:
    for key in list(os.environ):
        if key.startswith("PLAIT_"):
            monkeypatch.delenv(key)
    home = tmp_path / "plait-home"
    if request.node.get_closest_marker("model"):
        # Derived models are built into models/; share that folder across integration tests.
        home.mkdir()
        (shared_models_home / "models").mkdir(exist_ok=True)
        (home / "models").symlink_to(shared_models_home / "models")
    monkeypatch.setenv("PLAIT_HOME", str(home))
    monkeypatch.setenv("PLAIT_KEY", TEST_KEY)
    set_runtime(None)
    yield home
    set_runtime(None)


@pytest.fixture
def runtime(plait_home: Path) -> Iterator[Runtime]:
    rt = Runtime(load_settings(home=plait_home))
    set_runtime(rt)
    yield rt


@pytest.fixture
def fake_models(plait_home: Path) -> Iterator[Runtime]:
    """A default runtime whose chat and embedding models are fakes ('fake-chat', 'fake-embed')."""
    rt = fake_runtime(plait_home)
    set_runtime(rt)
    yield rt
