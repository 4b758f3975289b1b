import numpy as np
import pytest

import plait
from plait.errors import InputError
from plait.models.base import GenerationOptions, GenerationRequest, Message
from plait.runtime import Runtime


def test_generate_and_chat_through_the_default_model(fake_models: Runtime) -> None:
    out = plait.generate("hello there")
    assert out.text.strip() == "echo: hello there" and out.finish_reason == "stop"
    assert out.usage.completion_tokens == 3
    reply = plait.chat([Message("user", "hi")], options=GenerationOptions(max_tokens=1))
    assert reply.text.strip() == "echo:" and reply.finish_reason == "length"


def test_streaming_can_be_cancelled(fake_models: Runtime) -> None:
    stream = plait.generate_stream("one two three four five", raw=True)
    pieces = []
    for delta in stream:
        pieces.append(delta)
        if len(pieces) == 2:
            stream.request.cancel.set()
    assert pieces[-1].finish_reason == "cancelled"
    assert len([p for p in pieces if p.text]) == 2


def test_embed_many_keeps_order_and_normalises(fake_models: Runtime) -> None:
    texts = ["a b c", "a", "x y z w v u", "a b c"]
    vectors = plait.embed(texts)
    assert vectors.shape == (4, 64)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[0], vectors[3])
    single = plait.embed("a b c")
    assert np.allclose(single, vectors[0])


def test_embed_rejects_non_text(fake_models: Runtime) -> None:
    with pytest.raises(InputError, match="text #1"):
        plait.embed(["fine", 3])  # type: ignore[list-item]


def test_request_needs_exactly_one_of_prompt_or_messages() -> None:
    with pytest.raises(ValueError):
        GenerationRequest()
    with pytest.raises(ValueError):
        GenerationRequest(prompt="a", messages=(Message("user", "b"),))


def test_fit_history_drops_oldest_turns_first(fake_models: Runtime) -> None:
    from plait.models.base import TextGenerator
    from plait.tasks.generate import fit_history

    model = fake_models.model("fake-chat", TextGenerator)
    model.context_length = 100
    history = [Message("system", "be brief")] + [
        Message("user" if i % 2 == 0 else "assistant", f"turn {i} " + "x" * 80) for i in range(10)]
    kept = fit_history(history, model, reserve=20)
    assert kept[0].role == "system" and kept[-1] == history[-1]
    assert len(kept) < len(history)
    assert sum(model.count_tokens(m.content) + 4 for m in kept) <= 100 - 20 - 16


def test_embed_many_splits_a_small_batch_across_concurrent_sessions() -> None:
    import threading
    from collections.abc import Sequence

    from plait.models.base import Embedder

    class Sessions(Embedder):
        dimensions, batch_size, concurrency = 3, 64, 2

        def __init__(self) -> None:
            self.calls: list[tuple[str, int]] = []

        def embed_batch(self, texts: Sequence[str], kind: str = "document") -> np.ndarray:  # type: ignore[override]
            self.calls.append((threading.current_thread().name, len(texts)))
            return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    model = Sessions()
    texts = [f"text {'x' * i}" for i in range(15)]
    out = model.embed_many(texts)
    assert sorted(n for _, n in model.calls) == [7, 8]  # both sessions work on fifteen texts
    assert all(name.startswith("plait-embed") for name, _ in model.calls)
    expected = np.array([[len(t), 1.0, 0.0] for t in texts])
    assert np.allclose(out, expected / np.linalg.norm(expected, axis=1, keepdims=True))
    model.embed_many(["one"])
    assert model.calls[-1][1] == 1
