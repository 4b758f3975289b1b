import json

import httpx
import numpy as np
import pytest

from plait.errors import BackendError
from plait.models.base import GenerationOptions, Message
from plait.models.remote import RemoteModel
from plait.models.spec import ModelSpec

SPEC = ModelSpec(name="llama3", backend="openai", capabilities=("chat", "complete", "embed"),
                 source="http://127.0.0.1:11434/v1", options={"api_key_env": "TEST_REMOTE_KEY"})


def sse(*events: dict) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def test_streaming_chat_and_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_REMOTE_KEY", "sekrit")
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["auth"] = request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        body = sse({"choices": [{"delta": {"content": "Hel"}}]},
                   {"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}]},
                   {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    model = RemoteModel(SPEC, transport=httpx.MockTransport(handler))
    out = model.chat([Message("user", "hi")], GenerationOptions(max_tokens=8, seed=3, json_schema={"type": "object"}))
    assert out.text == "Hello" and out.usage.prompt_tokens == 5 and out.usage.completion_tokens == 2
    assert seen["auth"] == "Bearer sekrit"
    assert seen["body"]["model"] == "llama3" and seen["body"]["seed"] == 3
    assert seen["body"]["response_format"]["type"] == "json_schema"


def test_embeddings_in_order() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["input"]
        data = [{"index": i, "embedding": [float(i), 1.0]} for i in range(len(texts))][::-1]
        return httpx.Response(200, json={"data": data})

    model = RemoteModel(SPEC, transport=httpx.MockTransport(handler))
    vectors = model.embed_many(["a", "b", "c"])
    assert vectors.shape == (3, 2)
    assert np.allclose(vectors[2], np.array([2.0, 1.0]) / np.sqrt(5))


def test_errors_are_clear() -> None:
    def unauthorised(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": {"message": "invalid api key"}})

    model = RemoteModel(SPEC, transport=httpx.MockTransport(unauthorised))
    with pytest.raises(BackendError, match="401: invalid api key.*API key"):
        model.complete("x")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    model = RemoteModel(SPEC, transport=httpx.MockTransport(down))
    with pytest.raises(BackendError, match="cannot reach http://127.0.0.1:11434/v1"):
        model.complete("x")
