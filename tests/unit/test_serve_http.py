"""The server over real HTTP (uvicorn on loopback) with a fake model that waits when told to: clients that
disconnect mid-stream, a full generation queue, and the server carrying on after both."""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from plait.models.base import Delta, GenerationRequest, TextGenerator, Usage
from plait.models.loading import BACKENDS, register_backend
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from plait.settings import Settings
from tests.servers import RunningServer, serve_in_thread


class GatedChat(TextGenerator):
    """Says "first", then waits for ``gate`` (or a cancel) before finishing."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.gate = threading.Event()
        self.cancelled = threading.Event()
        self.started = threading.Semaphore(0)

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        self.started.release()
        yield Delta("first ")
        while not self.gate.wait(0.01):
            if request.cancel.is_set():
                self.cancelled.set()
                yield Delta("", finish_reason="cancelled", usage=Usage(1, 1))
                return
        yield Delta("second")
        yield Delta("", finish_reason="stop", usage=Usage(1, 2))


def _load(spec: ModelSpec, settings: Settings, models: object) -> GatedChat:
    return GatedChat(spec)


if "gated" not in BACKENDS:
    register_backend("gated", _load)


@pytest.fixture
def server(fake_models: Runtime) -> Iterator[tuple[RunningServer, GatedChat]]:
    fake_models.catalog.add(ModelSpec(name="gated", backend="gated", capabilities=("chat", "complete"),
                                      source="fake"), replace=True)
    settings = fake_models.settings.model_copy(update={"generation_queue": 1})
    app = create_app(settings, runtime=fake_models)
    key = ensure_local_key(KeyStore(fake_models.store), settings.home)
    model = fake_models.model("gated", GatedChat)
    with serve_in_thread(app, key) as running:
        yield running, model
    model.gate.set()


def _chat(stream: bool) -> dict[str, object]:
    return {"model": "gated", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def _wait(event: threading.Event, what: str) -> None:
    assert event.wait(10), f"timed out waiting for {what}"


def test_client_disconnect_mid_stream_cancels_generation(server: tuple[RunningServer, GatedChat]) -> None:
    running, model = server
    with httpx.Client(base_url=running.url, headers=running.headers, timeout=10) as client:
        with client.stream("POST", "/v1/chat/completions", json=_chat(True)) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if "first" in line:
                    break  # got the first piece: hang up
        _wait(model.cancelled, "the generation to be cancelled")
        model.gate.set()
        # The model's turn was given back: the next request is answered.
        r = client.post("/v1/chat/completions", json=_chat(False))
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "first second"


def test_client_disconnect_while_waiting_for_whole_answer(server: tuple[RunningServer, GatedChat]) -> None:
    running, model = server
    with httpx.Client(base_url=running.url, headers=running.headers, timeout=0.5) as client:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up on a non-streamed answer
            client.post("/api/chat", json={**_chat(False)})
    _wait(model.cancelled, "the generation to be cancelled")


def test_full_queue_answers_429_with_retry_after(server: tuple[RunningServer, GatedChat]) -> None:
    running, model = server
    results: dict[str, int] = {}

    def call(name: str) -> None:
        with httpx.Client(base_url=running.url, headers=running.headers, timeout=20) as c:
            results[name] = c.post("/v1/chat/completions", json=_chat(False)).status_code

    first = threading.Thread(target=call, args=("running",))
    first.start()
    assert model.started.acquire(timeout=10)  # the first one is generating
    second = threading.Thread(target=call, args=("waiting",))
    second.start()
    deadline = time.monotonic() + 10
    while running.app.state.ctx.queue.depth("gated") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with httpx.Client(base_url=running.url, headers=running.headers, timeout=10) as c:
        r = c.post("/v1/chat/completions", json=_chat(False))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "queue_full"
        r = c.post("/api/chat", json=_chat(False))
        assert r.status_code == 429 and "waiting" in r.json()["error"]
    model.gate.set()
    first.join(10)
    second.join(10)
    assert results == {"running": 200, "waiting": 200}
    metrics = httpx.get(running.url + "/metrics", headers=running.headers).text
    assert 'plait_generation_rejected_total{model="gated"} 2.0' in metrics


def test_a_task_that_calls_the_chat_model_waits_its_turn_in_its_queue(
        server: tuple[RunningServer, GatedChat]) -> None:
    # An abstractive summary answers with one JSON body, but it runs the chat model like a chat does: it
    # takes a turn in the model's queue, and is refused like a chat when the queue is full.
    running, model = server
    summary = {"text": "The bridge opens on Monday. Trains stop at the new station.", "method": "abstractive",
               "model": "gated"}
    results: dict[str, int] = {}

    def call(name: str, path: str, body: dict[str, object]) -> None:
        with httpx.Client(base_url=running.url, headers=running.headers, timeout=20) as c:
            results[name] = c.post(path, json=body).status_code

    first = threading.Thread(target=call, args=("chat", "/v1/chat/completions", _chat(False)))
    first.start()
    assert model.started.acquire(timeout=10)  # the chat is generating and holds the model's one slot
    second = threading.Thread(target=call, args=("summary", "/v1/summarize", summary))
    second.start()
    deadline = time.monotonic() + 10
    while running.app.state.ctx.queue.depth("gated") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert running.app.state.ctx.queue.depth("gated") == 1 and "summary" not in results  # waiting, not running
    with httpx.Client(base_url=running.url, headers=running.headers, timeout=10) as c:
        r = c.post("/v1/summarize", json=summary)
        assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
    model.gate.set()
    first.join(10)
    second.join(10)
    assert results == {"chat": 200, "summary": 200}


def test_shutdown_cancels_a_generation_still_streaming(fake_models: Runtime) -> None:
    fake_models.catalog.add(ModelSpec(name="gated", backend="gated", capabilities=("chat", "complete"),
                                      source="fake"), replace=True)
    app = create_app(fake_models.settings, runtime=fake_models)
    key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
    model = fake_models.model("gated", GatedChat)
    got_first = threading.Event()

    def client(url: str) -> None:
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=20) as c:
                with c.stream("POST", "/v1/chat/completions", json=_chat(True)) as r:
                    for line in r.iter_lines():
                        if "first" in line:
                            got_first.set()
        except httpx.HTTPError:
            pass  # the server went away mid-answer, as it should

    with serve_in_thread(app, key, graceful_seconds=0.5) as running:
        reader = threading.Thread(target=client, args=(running.url,))
        reader.start()
        _wait(got_first, "the first piece")
    # Leaving the block stopped the server: the unfinished answer was cancelled, not left running.
    assert model.cancelled.is_set()
    reader.join(10)
    assert app.state.ctx.closing
