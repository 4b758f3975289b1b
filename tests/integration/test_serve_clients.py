"""The official OpenAI and Ollama Python clients against plait's server, on loopback, with the real
packaged models (SmolLM2 GGUF for chat, minilm-q8 for embeddings)."""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from plait.settings import resolve_settings
from tests.servers import RunningServer, models_sharing_home, serve_in_thread

pytestmark = pytest.mark.model

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_models_home: Path) -> Iterator[RunningServer]:
    home = models_sharing_home(tmp_path_factory, shared_models_home, "serve-home")
    settings = resolve_settings(environ={}, home=home).settings  # the defaults: smollm2 and minilm-q8
    runtime = Runtime(settings)
    runtime.pool.get(settings.chat_model)
    runtime.pool.get(settings.embed_model)
    app = create_app(settings, runtime=runtime)
    key = ensure_local_key(KeyStore(runtime.store), home)
    with serve_in_thread(app, key) as running:
        yield running
    runtime.close()


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.key, max_retries=0, timeout=120)


def test_openai_model_list(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"smollm2", "minilm-q8"} <= ids


def test_openai_chat(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="smollm2", temperature=0, max_tokens=30,
        messages=[{"role": "user", "content": "Name three colours."}])
    text = out.choices[0].message.content or ""
    assert any(c in text.lower() for c in ("red", "blue", "green", "yellow"))
    assert out.usage is not None and out.usage.prompt_tokens > 5 and 0 < out.usage.completion_tokens <= 30
    assert out.choices[0].finish_reason in ("stop", "length")


def test_openai_streaming_chat(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2", temperature=0, max_tokens=25, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Write one sentence about the sea."}])
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        if chunk.usage:
            usage = chunk.usage
    assert len(pieces) >= 5 and len("".join(pieces).split()) >= 3
    assert usage is not None and usage.completion_tokens == len(pieces)


def test_openai_json_schema_output_parses(client: openai.OpenAI) -> None:
    out = client.chat.completions.create(
        model="smollm2", temperature=0, max_tokens=60,
        messages=[{"role": "user", "content": "Invent a person. Reply in JSON with name and age."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    person = json.loads(out.choices[0].message.content or "")
    assert set(person) == {"name", "age"} and isinstance(person["age"], int) and len(person["name"]) <= 20
    out = client.chat.completions.create(
        model="smollm2", temperature=0, max_tokens=200, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "Give a small JSON object with a cat's name and colour."}])
    if out.choices[0].finish_reason == "stop":  # a grammar cannot close an object the token cap cut short
        assert isinstance(json.loads(out.choices[0].message.content or ""), dict)
    else:
        assert (out.choices[0].message.content or "").lstrip().startswith("{")


def test_openai_completion(client: openai.OpenAI) -> None:
    # plait's `raw` continues the text; by default a chat model answers the prompt as a question (as
    # `plait generate` and Ollama's /api/generate do).
    out = client.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=5, temperature=0,
                                    extra_body={"raw": True})
    assert "paris" in out.choices[0].text.lower()
    out = client.completions.create(model="smollm2", prompt="Name three fruits.", max_tokens=24, temperature=0)
    assert any(fruit in out.choices[0].text.lower() for fruit in ("banana", "orange", "apple", "grape"))


def test_openai_embeddings(client: openai.OpenAI) -> None:
    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Stock markets fell sharply today."]
    out = client.embeddings.create(model="minilm-q8", input=texts)  # the client asks for base64
    vectors = np.array([d.embedding for d in out.data])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # meaning, not noise
    floats = client.embeddings.create(model="minilm-q8", input=texts[0], encoding_format="float")
    # Alone rather than in a batch of three: the int8 model quantizes activations per batch, so the
    # vector moves a little, but it is the same text's vector.
    assert float(np.dot(floats.data[0].embedding, vectors[0])) > 0.99
    assert out.usage.prompt_tokens >= 20  # counted by the model's tokenizer


def test_openai_errors_are_the_clients_exceptions(server: RunningServer, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="cannot embed"):
        client.embeddings.create(model="smollm2", input="x")
    with pytest.raises(openai.BadRequestError, match="n"):
        client.chat.completions.create(model="smollm2", n=2, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="context window") as too_long:
        client.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "word " * 3000}])
    assert too_long.value.code == "context_length_exceeded"
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="plait-not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    with pytest.raises(openai.APIStatusError) as too_big:
        client.embeddings.create(model="minilm-q8", input=["x" * 1_000_000] * 9)
    assert too_big.value.status_code == 413
    assert client.models.list()  # still serving


def test_disconnect_mid_stream_then_server_keeps_serving(server: RunningServer, client: openai.OpenAI) -> None:
    body = {"model": "smollm2", "stream": True, "max_tokens": 400, "temperature": 0,
            "messages": [{"role": "user", "content": "Tell a long story about a lighthouse."}]}
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as http:
        with http.stream("POST", "/v1/chat/completions", json=body) as r:
            for n, _ in enumerate(r.iter_lines()):
                if n >= 6:
                    break  # hang up after a few tokens
    out = client.chat.completions.create(model="smollm2", max_tokens=5, temperature=0,
                                         messages=[{"role": "user", "content": "Say hello."}])
    assert out.choices[0].message.content
    metrics = httpx.get(server.url + "/metrics", headers=server.headers).text
    # The abandoned story stopped early: far fewer than its 400 tokens were generated in total.
    tokens = sum(float(line.split()[-1]) for line in metrics.splitlines()
                 if line.startswith('plait_tokens_total{kind="completion"'))
    assert tokens < 400


def test_ollama_client(server: RunningServer) -> None:
    import ollama

    c = ollama.Client(host=server.url, headers=server.headers)
    assert "smollm2" in [m.model for m in c.list().models]
    assert "completion" in (c.show("smollm2").capabilities or [])
    reply = c.chat(model="smollm2", messages=[{"role": "user", "content": "Name three colours."}],
                   options={"temperature": 0, "num_predict": 30})
    assert any(col in reply.message.content.lower() for col in ("red", "blue", "green", "yellow"))
    assert reply.done and (reply.eval_count or 0) > 0
    parts = [chunk.message.content for chunk in c.chat(
        model="smollm2", stream=True, options={"temperature": 0, "num_predict": 20},
        messages=[{"role": "user", "content": "Write one sentence about the sea."}])]
    assert len(parts) >= 5
    out = c.generate(model="smollm2", prompt="Say hello.", options={"temperature": 0, "num_predict": 10})
    assert out.response.strip()
    person = c.chat(model="smollm2", format=PERSON, options={"temperature": 0, "num_predict": 60},
                    messages=[{"role": "user", "content": "Invent a person with a name and an age."}])
    assert set(json.loads(person.message.content)) == {"name", "age"}
    emb = c.embed(model="minilm-q8", input=["first text", "second text"])
    assert len(emb.embeddings) == 2 and len(emb.embeddings[0]) == 384
    with pytest.raises(ollama.ResponseError) as missing:
        c.chat(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.status_code == 404
