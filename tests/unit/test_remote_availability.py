"""A remote model server that fails in each way (refuses, hangs, 500s, malformed JSON, a stream dropped or cut
short), against a real HTTP server on 127.0.0.1: clear errors, the circuit breaker, health checks, and the
fallback model answering generation while the server is down."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from plait.errors import BackendError
from plait.models.availability import ServerDown, WithFallback
from plait.models.base import Embedder, Message, TextGenerator
from plait.models.remote import RemoteModel
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from tests.flaky_server import MODEL, FlakyServer, flaky_server, refused_url

FAILURES = {
    "500": "answered 500: CUDA out of memory",
    "malformed": "malformed stream event",
    "drop": "broke off its answer",
    "truncate": "ended its answer before it was complete",
}


def spec(url: str, **options: Any) -> ModelSpec:
    return ModelSpec(name="big", backend="openai", capabilities=("chat", "complete", "embed"), source=url,
                     options={"remote_model": MODEL, "redact": False, "timeout": 1.0, **options})


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    with flaky_server() as s:
        yield s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def remote(url: str, clock: Clock | None = None, **options: Any) -> RemoteModel:
    model = RemoteModel(spec(url, **options))
    if clock is not None:
        model.availability.clock = clock
    return model


def test_a_working_server_answers_and_its_health_says_what_it_serves(server: FlakyServer) -> None:
    model = remote(server.url)
    answer = model.chat([Message("user", "hi")])
    assert answer.text == "Hello from big." and answer.usage.completion_tokens == 3
    health = model.health()
    assert health.ok and health.models == (MODEL,)
    assert model.embed_many(["ab", "abcd"]).shape == (2, 2)


@pytest.mark.parametrize("mode", sorted(FAILURES))
def test_each_failure_is_a_clear_server_down_error(server: FlakyServer, mode: str) -> None:
    server.mode = mode
    model = remote(server.url)
    with pytest.raises(ServerDown, match=FAILURES[mode]):
        model.chat([Message("user", "hi")])
    assert model.availability.down


def test_a_refused_connection_and_a_hang_are_server_down(server: FlakyServer) -> None:
    with pytest.raises(ServerDown, match="cannot reach .*is the server running"):
        remote(refused_url()).complete("hi")
    server.mode = "hang"
    with pytest.raises(ServerDown, match="did not answer in time \\(ReadTimeout"):  # the entry's timeout: 1 s
        remote(server.url).complete("hi")


def test_malformed_embeddings_are_server_down_and_never_fall_back(server: FlakyServer, fake_models: Runtime) -> None:
    server.mode = "malformed"
    model = WithFallback(remote(server.url), "fake-chat", fake_models.pool)
    with pytest.raises(ServerDown, match="sent no usable embeddings"):
        model.embed_many(["a text"])


def test_a_client_error_is_not_the_server_being_down(server: FlakyServer) -> None:
    model = remote(server.url.rsplit("/v1", 1)[0] + "/nowhere")
    with pytest.raises(BackendError, match="404") as raised:
        model.complete("hi")
    assert not isinstance(raised.value, ServerDown) and not model.availability.down


def test_a_down_server_is_not_asked_again_until_retry_after_then_its_health_first(server: FlakyServer) -> None:
    clock = Clock()
    model = remote(server.url, clock, retry_after=30)
    server.mode = "500"
    with pytest.raises(ServerDown):
        model.complete("hi")
    asked = len(server.requests)
    server.mode = "ok"
    with pytest.raises(ServerDown, match="is down .*tries it again in 30 s"):
        model.complete("hi")
    assert len(server.requests) == asked  # failed at once, nothing sent
    clock.now += 31
    assert model.complete("hi").text == "Hello from big."
    assert server.requests[asked:] == ["GET /v1/models", "POST /v1/completions"]
    assert not model.availability.down


def test_a_failed_health_check_keeps_it_down_without_sending_the_request(server: FlakyServer) -> None:
    clock = Clock()
    model = remote(server.url, clock, retry_after=30)
    server.mode = "500"
    with pytest.raises(ServerDown):
        model.complete("hi")
    clock.now += 31
    with pytest.raises(ServerDown, match="still down: its health check says /models answered 500"):
        model.complete("hi")
    assert server.requests[-1] == "GET /v1/models"


@pytest.mark.parametrize("mode", ["refused", "hang", "500", "malformed"])
def test_the_fallback_answers_while_the_server_is_down(server: FlakyServer, fake_models: Runtime, mode: str) -> None:
    url = refused_url() if mode == "refused" else server.url
    server.mode = mode
    fake_models.catalog.add(spec(url, fallback="fake-chat"))
    model = fake_models.model("big", TextGenerator)
    assert isinstance(model, WithFallback)
    answer = model.chat([Message("user", "are you there")])
    assert answer.text.strip() == "echo: are you there" and answer.model == "fake-chat"
    server.mode = "ok"
    # Still inside retry_after: the fallback answers without the server being asked.
    asked = len(server.requests)
    assert model.chat([Message("user", "again")]).model == "fake-chat"
    assert len(server.requests) == asked


@pytest.mark.parametrize("mode", ["drop", "truncate"])
def test_a_stream_cut_after_some_text_is_an_error_not_a_fallback(server: FlakyServer, fake_models: Runtime,
                                                                 mode: str) -> None:
    server.mode = mode
    fake_models.catalog.add(spec(server.url, fallback="fake-chat"))
    model = fake_models.model("big", TextGenerator)
    pieces: list[str] = []
    with pytest.raises(ServerDown, match="stopped after 2 piece.*incomplete"):
        for delta in model.stream(_chat("hi")):
            pieces.append(delta.text)
    assert "".join(pieces) == "Hello from "


def test_a_working_server_with_a_fallback_answers_itself(server: FlakyServer, fake_models: Runtime) -> None:
    fake_models.catalog.add(spec(server.url, fallback="fake-chat"))
    model = fake_models.model("big", TextGenerator)
    assert model.chat([Message("user", "hi")]).model == "big"
    assert isinstance(fake_models.model("big", Embedder), WithFallback)


def _chat(text: str) -> Any:
    from plait.models.base import GenerationRequest

    return GenerationRequest(messages=(Message("user", text),))


def test_through_plaits_server_the_openai_client_gets_the_fallbacks_answer(server: FlakyServer,
                                                                          fake_models: Runtime) -> None:
    import openai

    from plait.serve.app import create_app
    from plait.serve.auth import KeyStore, ensure_local_key
    from tests.servers import serve_in_thread

    fake_models.catalog.add(spec(server.url, fallback="fake-chat"))
    app = create_app(fake_models.settings, runtime=fake_models)
    key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
    with serve_in_thread(app, key) as running:
        client = openai.OpenAI(base_url=running.url + "/v1", api_key=key, max_retries=0, timeout=30)
        up = client.chat.completions.create(model="big", messages=[{"role": "user", "content": "hi"}])
        assert up.choices[0].message.content == "Hello from big."
        server.mode = "500"
        down = client.chat.completions.create(model="big", messages=[{"role": "user", "content": "hi there"}])
        assert (down.choices[0].message.content or "").strip() == "echo: hi there"
        streamed = client.chat.completions.create(model="big", messages=[{"role": "user", "content": "and now"}],
                                                  stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).strip() == "echo: and now"
        with pytest.raises(openai.APIStatusError, match="sent no usable embeddings|is down"):
            server.mode = "malformed"
            client.embeddings.create(model="big", input=["no fallback for vectors"])


def test_models_add_with_a_fallback_and_check(server: FlakyServer, fake_models: Runtime,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli import plait

    code, out, err = plait(capsys, "models", "add", "big", server.url, "--remote-model", MODEL, "--fallback",
                           "no-such-model")
    assert code != 0 and "unknown model 'no-such-model'" in out + err
    code, out, _ = plait(capsys, "models", "add", "big", server.url, "--remote-model", MODEL, "--fallback",
                         "fake-chat", "--timeout", "2")
    assert code == 0, out
    assert fake_models.catalog.get("big").options["fallback"] == "fake-chat"
    code, out, _ = plait(capsys, "models", "check", "big")
    assert code == 0 and "big: up" in out and "serves big" in out
    server.mode = "500"
    code, out, _ = plait(capsys, "models", "check", "big")
    assert code == 6 and "/models answered 500" in out


def test_a_send_outside_an_http_request_is_an_egress_row_of_the_home(server: FlakyServer,
                                                                      fake_models: Runtime) -> None:
    from plait.security.audit import AuditEvent, read, recording, verify

    fake_models.catalog.add(spec(server.url))
    model = fake_models.model("big", TextGenerator)
    model.chat([Message("user", "hi")])  # as the CLI, the Python API or a workflow would
    fake_models.model("big", Embedder).embed_many(["one", "two"])
    rows = read(fake_models.store, kinds=("egress",))
    # One row per request sent: the chat, the embeddings (and the embedder's probe of its dimensions).
    assert len(rows) >= 2 and {r.key for r in rows} == {"local"} and {r.model for r in rows} == {MODEL}
    sent = [e for r in rows for e in r.detail["egress"]]
    assert all(e["backend"] == server.url and e["bytes"] > 0 for e in sent)
    # Inside an HTTP request the send joins that request's row instead.
    request = AuditEvent(0.0, "request")
    with recording(request):
        model.chat([Message("user", "hi")])
    assert len(read(fake_models.store, kinds=("egress",))) == len(rows) and request.detail["egress"][0]["bytes"] > 0
    assert verify(fake_models.store)[1] is None
