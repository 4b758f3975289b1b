"""Fake models for fast unit tests: deterministic, no weights, registered per test."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from plait.models.base import Delta, Embedder, EmbedKind, GenerationRequest, TextGenerator, Usage
from plait.models.loading import BACKENDS, register_backend
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from plait.settings import Settings, load_settings


class FakeChat(TextGenerator):
    """Echoes the last user message (or the prompt) word by word, honouring max_tokens and cancel."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.closed = False

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        opts = self.resolved(request.options)
        source = request.prompt if request.prompt is not None else request.messages[-1].content  # type: ignore[index]
        words = f"echo: {source}".split()
        n = 0
        finish = "stop"
        for word in words:
            if request.cancel.is_set():
                finish = "cancelled"
                break
            if n >= (opts.max_tokens or 0):
                finish = "length"
                break
            n += 1
            yield Delta(word + " ")
        yield Delta("", finish_reason=finish, usage=Usage(len(source.split()), n))  # type: ignore[arg-type]

    def close(self) -> None:
        self.closed = True


class FakeEmbed(Embedder):
    """Bag-of-words hashing embedder: texts sharing words get similar vectors."""

    dimensions = 64

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.calls = 0

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                h = int(hashlib.md5(word.encode()).hexdigest(), 16)
                out[row, h % self.dimensions] += 1.0
        return out


def _fake_loader(spec: ModelSpec, settings: Settings, models: object) -> TextGenerator | Embedder:
    return FakeEmbed(spec) if "embed" in spec.capabilities else FakeChat(spec)


if "fake" not in BACKENDS:
    register_backend("fake", _fake_loader)

FAKE_SPECS = [
    ModelSpec(name="fake-chat", backend="fake", capabilities=("chat", "complete"), source="fake"),
    ModelSpec(name="fake-embed", backend="fake", capabilities=("embed",), source="fake"),
]


def fake_runtime(home: Path) -> Runtime:
    """A runtime whose default chat and embedding models are the fakes."""
    rt = Runtime(load_settings(home=home, chat_model="fake-chat", embed_model="fake-embed"))
    for spec in FAKE_SPECS:
        rt.catalog.add(spec, replace=True)
    return rt
