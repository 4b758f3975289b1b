"""The HTTP app with fake models, in-process: routes, error shapes, auth, limits, cache, metrics, log."""

import base64
import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key

CHAT = {"model": "fake-chat", "messages": [{"role": "user", "content": "hello there"}]}


def cache_hits(ctx: Any) -> float:
    """Response-cache hits so far, as /metrics counts them."""
    return ctx.metrics.registry.get_sample_value("plait_cache_lookups_total", {"result": "hit"}) or 0.0


class Served:
    def __init__(self, client: TestClient, key: str, runtime: Runtime) -> None:
        self.client, self.key, self.runtime = client, key, runtime
        self.headers = {"Authorization": f"Bearer {key}"}

    def post(self, path: str, body: Any, **kw: Any) -> Any:
        return self.client.post(path, json=body, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    @property
    def ctx(self) -> Any:
        return self.client.app.state.ctx  # type: ignore[attr-defined]


def _serve(runtime: Runtime, **overrides: Any) -> Iterator[Served]:
    settings = runtime.settings.model_copy(update=overrides)
    app = create_app(settings, runtime=runtime)
    key = ensure_local_key(KeyStore(runtime.store), settings.home)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield Served(client, key, runtime)


@pytest.fixture
def served(fake_models: Runtime) -> Iterator[Served]:
    yield from _serve(fake_models)


def test_health_needs_no_key_but_the_api_does(served: Served) -> None:
    assert served.client.get("/health").json().keys() == {"status", "version"}  # nothing about models
    assert served.client.get("/health").json()["status"] == "ok"
    r = served.client.get("/v1/models")
    assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
    assert r.headers["www-authenticate"] == "Bearer"
    r = served.client.get("/v1/models", headers={"Authorization": "Bearer plait-wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = served.client.get("/api/tags", headers={"Authorization": "Bearer plait-wrong"})
    assert r.status_code == 401 and isinstance(r.json()["error"], str)  # Ollama's error shape
    names = [m["id"] for m in served.get("/v1/models").json()["data"]]
    assert {"fake-chat", "fake-embed", "smollm2"} <= set(names)
    assert served.get("/v1/models/fake-chat").json()["capabilities"] == ["chat", "complete"]
    assert served.get("/v1/models/nope").status_code == 404


def test_scopes_and_revocation(served: Served) -> None:
    keys = KeyStore(served.runtime.store)
    tasks_only = keys.create("robot", "tasks")
    r = served.client.post("/v1/chat/completions", json=CHAT,
                           headers={"Authorization": f"Bearer {tasks_only.secret}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    chat_key = keys.create("editor", "chat")
    h = {"Authorization": f"Bearer {chat_key.secret}"}
    assert served.client.post("/v1/chat/completions", json=CHAT, headers=h).status_code == 200
    assert served.client.get("/metrics", headers=h).status_code == 403  # metrics need admin
    keys.revoke(chat_key.key.id)
    assert served.client.post("/v1/chat/completions", json=CHAT, headers=h).status_code == 401
    # x-api-key works too (some clients send keys that way)
    assert served.client.get("/v1/models", headers={"x-api-key": served.key}).status_code == 200


def test_per_key_rate_limit_answers_429_with_retry_after(served: Served) -> None:
    limited = KeyStore(served.runtime.store).create("script", "chat", rate_limit=2)
    h = {"Authorization": f"Bearer {limited.secret}"}
    assert [served.client.get("/v1/models", headers=h).status_code for _ in range(2)] == [200, 200]
    r = served.client.get("/v1/models", headers=h)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert served.get("/v1/models").status_code == 200  # other keys are not affected


def test_chat_completion_and_usage(served: Served) -> None:
    r = served.post("/v1/chat/completions", {**CHAT, "max_tokens": 2})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "echo: hello "}
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4,
                             "prompt_tokens_details": {"cached_tokens": 0}}
    assert body["system_fingerprint"].startswith("fake-chat@1:")


def test_model_may_be_left_out_for_the_default_ones(served: Served) -> None:
    chat = served.post("/v1/chat/completions", {"messages": CHAT["messages"], "max_tokens": 2}).json()
    assert chat["model"] == served.runtime.settings.chat_model
    embedded = served.post("/v1/embeddings", {"input": "hello"}).json()
    assert embedded["model"] == served.runtime.settings.embed_model and len(embedded["data"]) == 1


def test_chat_streams_server_sent_events(served: Served) -> None:
    r = served.post("/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "echo: hello there "
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3


def test_plain_completion_with_echo_and_one_prompt_only(served: Served) -> None:
    r = served.post("/v1/completions", {"model": "fake-chat", "prompt": "once upon", "echo": True})
    assert r.json()["choices"][0]["text"] == "once uponecho: once upon "
    r = served.post("/v1/completions", {"model": "fake-chat", "prompt": ["a", "b"]})
    assert r.status_code == 400 and "one prompt" in r.json()["error"]["message"]
    r = served.post("/v1/completions", {"model": "fake-chat", "prompt": "x", "stream": True})
    assert r.text.rstrip().endswith("data: [DONE]")
    r = served.post("/v1/completions", {"model": "fake-chat", "prompt": "once upon", "echo": True, "stream": True})
    chunks = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
    assert "".join(c["choices"][0]["text"] for c in chunks) == "once uponecho: once upon "  # as without stream


def test_embeddings_float_base64_and_cache(served: Served) -> None:
    body = {"model": "fake-embed", "input": ["red apples", "green pears"]}
    floats = served.post("/v1/embeddings", body).json()
    assert floats["object"] == "list" and len(floats["data"]) == 2
    assert floats["usage"]["prompt_tokens"] == 4  # the fake has no tokenizer: words
    encoded = served.post("/v1/embeddings", {**body, "encoding_format": "base64"}).json()
    for f, e in zip(floats["data"], encoded["data"], strict=True):
        decoded = np.frombuffer(base64.b64decode(e["embedding"]), dtype="<f4")
        assert np.allclose(decoded, f["embedding"], atol=1e-6)
    one = served.post("/v1/embeddings", {"model": "fake-embed", "input": "red apples"}).json()
    assert np.allclose(one["data"][0]["embedding"], floats["data"][0]["embedding"])
    model = served.runtime.model("fake-embed", type(served.runtime.model("fake-embed", object)))  # type: ignore[arg-type]
    calls = model.calls  # type: ignore[attr-defined]
    assert served.post("/v1/embeddings", body).json() == floats  # from the cache
    assert model.calls == calls  # type: ignore[attr-defined]


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"model": "fake-embed", "input": [1, 2, 3]}, 400, "token arrays"),
    ({"model": "fake-embed", "input": []}, 400, "at least one"),
    ({"model": "fake-embed", "input": "x", "dimensions": 3}, 400, "64-dimensional"),
    ({"model": "fake-chat", "input": "x"}, 400, "cannot embed"),
    ({"model": "nope", "input": "x"}, 404, "unknown model"),
    ({"model": "fake-embed", "input": "x", "encoding_format": "int8"}, 400, "encoding_format"),
])
def test_embedding_errors(served: Served, body: dict[str, Any], status: int, text: str) -> None:
    r = served.post("/v1/embeddings", body)
    assert r.status_code == status and text in r.json()["error"]["message"]


@pytest.mark.parametrize(("extra", "text"), [
    ({"n": 2}, "n:"),
    ({"tools": [{"type": "function"}]}, "tools"),
    ({"logprobs": True}, "logprobs"),
    ({"temperature": 3}, "temperature"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "role"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"response_format": {"type": "json_schema"}}, "json_schema"),
])
def test_unsupported_or_invalid_chat_parameters_are_400(served: Served, extra: dict[str, Any], text: str) -> None:
    r = served.post("/v1/chat/completions", {**CHAT, **extra})
    assert r.status_code == 400, r.text
    assert text in r.json()["error"]["message"]


def test_every_prompt_has_the_same_size_limit(served: Served) -> None:
    from plait.tasks.generate import MAX_MESSAGES, MAX_PROMPT_CHARS

    half = "x" * (MAX_PROMPT_CHARS // 2 + 1)  # each part fits; together they do not
    for path, body in [
        ("/v1/completions", {"model": "fake-chat", "prompt": half * 2}),
        ("/v1/completions", {"model": "fake-chat", "prompt": [half * 2]}),
        ("/v1/chat/completions", {"model": "fake-chat", "messages": [{"role": "user", "content": half}] * 2}),
        ("/api/generate", {"model": "fake-chat", "prompt": half, "system": half}),
        ("/api/chat", {"model": "fake-chat", "messages": [{"role": "user", "content": half}] * 2}),
        ("/v1/generate", {"model": "fake-chat", "prompt": half, "system": half}),
        ("/v1/chat", {"model": "fake-chat", "messages": [{"role": "user", "content": half}] * 2}),
    ]:
        r = served.post(path, body)
        assert r.status_code == 400, (path, r.status_code)
        message = r.json()["error"] if path.startswith("/api/") else r.json()["error"]["message"]
        assert f"at most {MAX_PROMPT_CHARS:,}" in message, (path, message)
    many = [{"role": "user", "content": "x"}] * (MAX_MESSAGES + 1)
    for path in ("/v1/chat/completions", "/api/chat", "/v1/chat"):
        assert served.post(path, {"model": "fake-chat", "messages": many}).status_code == 400, path


def test_malformed_and_oversized_bodies(fake_models: Runtime) -> None:
    for s in _serve(fake_models, max_request_bytes=2048):
        h = {**s.headers, "content-type": "application/json"}
        r = s.client.post("/v1/chat/completions", content=b'{"model": ', headers=h)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
        r = s.client.post("/v1/chat/completions", content=b"[1]", headers=h)
        assert r.status_code == 400
        r = s.client.post("/v1/embeddings", json={"model": "fake-embed", "input": "x" * 5000}, headers=s.headers)
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"model": "fake-embed", "input": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}'

        r = s.client.post("/v1/embeddings", content=chunks(), headers=h)
        assert r.status_code == 413
        assert s.post("/v1/embeddings", {"model": "fake-embed", "input": "small"}).status_code == 200


def test_generation_cache_only_when_deterministic(served: Served) -> None:
    cache = served.ctx.cache
    served.post("/v1/chat/completions", {**CHAT, "temperature": 0})
    first_hits = cache_hits(served.ctx)
    again = served.post("/v1/chat/completions", {**CHAT, "temperature": 0}).json()
    assert cache_hits(served.ctx) == first_hits + 1
    assert again["choices"][0]["message"]["content"] == "echo: hello there "
    size = len(cache)
    served.post("/v1/chat/completions", {**CHAT, "temperature": 0.9})
    served.post("/v1/chat/completions", {**CHAT, "temperature": 0.9})
    assert len(cache) == size  # sampled without a seed: never cached
    served.post("/v1/chat/completions", {**CHAT, "temperature": 0.9, "seed": 7})
    assert len(cache) == size + 1


def test_ollama_routes(served: Served) -> None:
    tags = served.get("/api/tags").json()["models"]
    assert any(m["name"] == "smollm2" and m["details"]["format"] == "gguf" for m in tags)
    assert served.get("/api/version").json()["version"]
    show = served.post("/api/show", {"model": "fake-chat:latest"}).json()
    assert show["capabilities"] == ["completion"]
    r = served.post("/api/chat", {"model": "fake-chat", "messages": [{"role": "user", "content": "hi you"}]})
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert "".join(x["message"]["content"] for x in lines) == "echo: hi you "
    assert lines[-1]["done"] and lines[-1]["eval_count"] == 3 and not lines[0]["done"]
    r = served.post("/api/generate", {"model": "fake-chat", "prompt": "abc", "stream": False,
                                      "options": {"num_predict": 1, "num_ctx": 4096}})
    assert r.json()["response"] == "echo: " and r.json()["done_reason"] == "length"
    r = served.post("/api/embed", {"model": "fake-embed", "input": ["a b", "c"]})
    assert len(r.json()["embeddings"]) == 2 and len(r.json()["embeddings"][0]) == 64
    assert len(served.post("/api/embeddings", {"model": "fake-embed", "prompt": "a"}).json()["embedding"]) == 64
    assert "fake-chat" in [m["name"] for m in served.get("/api/ps").json()["models"]]
    r = served.post("/api/chat", {"model": "nope", "messages": []})
    assert r.status_code == 404 and "unknown model" in r.json()["error"]
    r = served.post("/api/generate", {"model": "fake-chat", "prompt": "x", "context": [1, 2]})
    assert r.status_code == 400 and isinstance(r.json()["error"], str)


def test_metrics_count_requests_tokens_cache_and_batches(served: Served) -> None:
    served.post("/v1/chat/completions", {**CHAT, "temperature": 0})
    served.post("/v1/chat/completions", {**CHAT, "temperature": 0})
    served.post("/v1/embeddings", {"model": "fake-embed", "input": ["a", "b", "c"]})
    text = served.get("/metrics").text
    assert 'plait_http_requests_total{method="POST",route="/v1/chat/completions",status="200"} 2.0' in text
    assert 'plait_tokens_total{kind="completion",model="fake-chat"} 3.0' in text
    assert 'plait_cache_lookups_total{result="hit"} 1.0' in text
    assert 'plait_batch_size_sum{model="fake-embed"} 3.0' in text
    assert "plait_generation_queue_depth" in text and "plait_http_request_seconds_bucket" in text


def test_access_log_has_no_bodies_or_secrets(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="plait.access"):
        served.post("/v1/chat/completions", {"model": "fake-chat", "messages": [{"role": "user",
                                              "content": "my secret diary"}]})
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "plait.access"]
    assert records and records[-1]["path"] == "/v1/chat/completions" and records[-1]["status"] == 200
    assert records[-1]["key"] == "local"
    logged = caplog.text
    assert "secret diary" not in logged and served.key not in logged


def test_cors_is_off_unless_configured(fake_models: Runtime) -> None:
    preflight = {"Origin": "http://example.test", "Access-Control-Request-Method": "POST"}
    for s in _serve(fake_models):
        r = s.client.options("/v1/chat/completions", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
    for s in _serve(fake_models, cors_origins=("http://example.test",)):
        r = s.client.options("/v1/chat/completions", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "http://example.test"


def test_auth_can_be_turned_off(fake_models: Runtime) -> None:
    for s in _serve(fake_models, api_auth=False):
        assert s.client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_openapi_document_describes_the_api(served: Served) -> None:
    doc = served.client.get("/openapi.json").json()
    for path in ("/v1/chat/completions", "/v1/embeddings", "/api/chat", "/api/embed", "/health", "/metrics"):
        assert path in doc["paths"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    assert {"400", "401", "404", "429"} <= set(chat["responses"])


def test_no_route_reads_server_files(served: Served) -> None:
    for path in ("/../../etc/passwd", "/static/../../etc/passwd", "/v1/models/..%2F..%2Fetc%2Fpasswd"):
        r = served.get(path)
        assert r.status_code in (400, 404) and "root:" not in r.text
