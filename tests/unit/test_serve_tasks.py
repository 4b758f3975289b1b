"""Task routes with fake models: typed requests, the task's own answer, caching, batching, uploads."""

import asyncio
import json
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from plait.serve.routes.tasks import build_router
from plait.tasks.registry import Registry, registry
from tests.unit.test_serve_app import cache_hits

TEXT = ("The budget meeting moved to Friday. Anna said the costs rose sharply this quarter. "
        "The rocket launch was a great success. Everyone loved the new design.")


@pytest.fixture
def app(fake_models: Runtime) -> Any:
    return create_app(fake_models.settings, runtime=fake_models)


@pytest.fixture
def client(app: Any, fake_models: Runtime) -> Iterator[TestClient]:
    key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {key}"}) as c:
        yield c


def test_every_task_of_the_registry_gets_a_route() -> None:
    _, added = build_router()
    assert added == registry().names()  # a definition that no longer loads fails here
    assert {"summarize", "extract", "sentiment", "see", "hear", "speak", "plan", "generate"} <= set(added)


def test_a_task_whose_module_is_missing_is_not_listed() -> None:
    reg = Registry()
    reg.declare("ghost", "no_such_task_module:TASK")
    assert reg.names() == []


def test_summarize_answers_and_is_cached(client: TestClient, app: Any) -> None:
    r = client.post("/v1/summarize", json={"text": TEXT, "sentences": 2})
    assert r.status_code == 200
    body = r.json()
    assert len(body["points"]) == 2 and body["model"] == "fake-embed" and body["method"] == "extractive"
    hits = cache_hits(app.state.ctx)
    assert client.post("/v1/summarize", json={"text": TEXT, "sentences": 2}).json() == body
    assert cache_hits(app.state.ctx) == hits + 1
    r = client.post("/v1/summarize", json={"text": TEXT, "sentences": 0})
    assert r.status_code == 400 and r.json()["error"]["param"] == "sentences"
    assert client.post("/v1/summarize", json={"text": TEXT, "colour": "red"}).status_code == 400


def test_sentiment(client: TestClient) -> None:
    body = client.post("/v1/sentiment", json={"text": "I love it. It is wonderful."}).json()
    assert body["label"] == "positive" and len(body["sentences"]) == 2


def test_task_routes_need_the_tasks_scope(client: TestClient, fake_models: Runtime) -> None:
    chat_only = KeyStore(fake_models.store).create("chat-only", "chat")
    r = client.post("/v1/sentiment", json={"text": "fine"}, headers={"Authorization": f"Bearer {chat_only.secret}"})
    assert r.status_code == 403


def test_extract_with_a_schema_the_model_cannot_fill_is_422(client: TestClient) -> None:
    r = client.post("/v1/extract", json={"text": TEXT, "json_schema": {
        "type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "model_output_invalid"
    assert client.post("/v1/extract", json={"text": TEXT, "reference": 12345}).status_code == 400


def test_uploads_are_content_never_paths(client: TestClient) -> None:
    r = client.post("/v1/see", json={"image": "/etc/passwd"})
    assert r.status_code == 400 and "base64" in r.json()["error"]["message"]
    r = client.post("/v1/hear", json={"audio": "data:audio/wav;base64,UklGRgAAAABXQVZF"})
    assert r.status_code == 400 and "WAV" in r.json()["error"]["message"]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_speak_returns_a_wav_file(client: TestClient) -> None:
    r = client.post("/v1/speak", json={"text": "Hello from plait."})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    assert r.content[:4] == b"RIFF" and r.content[8:12] == b"WAVE"
    assert client.post("/v1/speak", json={"text": "x", "voice": "--evil"}).status_code == 400


def test_classify_batches_concurrent_requests(app: Any, fake_models: Runtime) -> None:
    key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
    labels = {"labels": ["space", "religion"], "descriptions": {"space": "rockets orbit planets",
                                                                "religion": "god faith church"}}

    async def run() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                     headers={"Authorization": f"Bearer {key}"}) as c:
            texts = ["the rocket reached orbit", "faith in god", "planets and rockets", "the church choir"] * 4
            rs = await asyncio.gather(*(c.post("/v1/classify", json={**labels, "texts": t}) for t in texts))
            return [r.json() for r in rs]

    results = asyncio.run(run())
    assert [r["label"] for r in results[:4]] == ["space", "religion", "space", "religion"]
    metrics = app.state.ctx.metrics.render()[0].decode()
    count = next(float(line.split()[-1]) for line in metrics.splitlines()
                 if line.startswith('plait_batch_size_count{model="classify"}'))
    assert count < 16  # 16 requests, fewer model calls


def test_embed_batches_concurrent_requests_and_keeps_each_answer_its_own(app: Any, fake_models: Runtime) -> None:
    from plait.tasks.embed import embed

    key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
    texts = [f"note number {i} about rockets" for i in range(12)]

    async def run() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                     headers={"Authorization": f"Bearer {key}"}) as c:
            bodies = [{"texts": t} for t in texts] + [{"texts": texts[:3], "kind": "query"}]
            rs = await asyncio.gather(*(c.post("/v1/embed", json=b) for b in bodies))
            assert all(r.status_code == 200 for r in rs), [r.text for r in rs]
            return [r.json() for r in rs]

    results = asyncio.run(run())
    expected = embed(texts, runtime=fake_models)
    for body, row in zip(results[:12], expected, strict=True):  # a single text gets a one-row answer
        assert body["model"] == "fake-embed" and body["dimensions"] == len(row)
        assert body["embeddings"] == [pytest.approx(row.tolist(), abs=1e-6)]
    queries = embed(texts[:3], kind="query", runtime=fake_models)
    assert results[12]["embeddings"] == [pytest.approx(r.tolist(), abs=1e-6) for r in queries]
    metrics = app.state.ctx.metrics.render()[0].decode()
    count = next(float(line.split()[-1]) for line in metrics.splitlines()
                 if line.startswith('plait_batch_size_count{model="embed"}'))
    assert count < 13  # 13 requests, fewer model calls


def test_search_and_ask_on_an_empty_index(client: TestClient) -> None:
    r = client.post("/v1/search", json={"query": "budget"})
    assert r.status_code == 200 and r.json()["hits"] == []
    r = client.post("/v1/ask", json={"question": "what about the budget?"})
    assert r.status_code == 200 and r.json()["found"] is False
    r = client.post("/v1/ask", json={"question": "what about the budget?", "stream": True})
    events = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
    assert [e["type"] for e in events] == ["sources", "evidence", "delta", "result"]  # evidence before the answer
    assert client.post("/v1/search", json={"query": "x", "k": 0}).status_code == 400
