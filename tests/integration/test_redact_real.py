"""Redaction with the real engine (Presidio and the packaged spaCy model): precision and recall per entity type
on real news text with known personal data inserted, and a remote model server (a fake OpenAI-compatible one,
a real HTTP server on loopback) that never receives an inserted e-mail address, phone number or card number
while the person still reads the real values in the answer."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from plait.security.pii import ENTITIES, PresidioDetector
from tests.pii_corpus import labelled_set, score

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def detector() -> PresidioDetector:
    return PresidioDetector()


def test_precision_and_recall_per_entity_type(detector: PresidioDetector) -> None:
    docs = labelled_set(60)
    found = [[(f.entity, f.start, f.end) for f in detector.detect(d.text, ENTITIES)] for d in docs]
    natural = [[(f.entity, f.start, f.end) for f in detector.detect(d.original, ENTITIES)] for d in docs]
    per_type = score(docs, found, natural).per_type()
    print(json.dumps(per_type))
    # Checked values (checksums, numbering plans, parsed addresses) are found exactly.
    for kind in ("EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "CREDIT_CARD", "IP_ADDRESS"):
        assert per_type[kind]["recall"] == 1.0 and per_type[kind]["precision"] >= 0.95, (kind, per_type[kind])
    # Names and places depend on spaCy's small model.
    assert per_type["PERSON"]["recall"] >= 0.6 and per_type["PERSON"]["precision"] >= 0.9
    assert per_type["LOCATION"]["recall"] >= 0.8 and per_type["STREET_ADDRESS"]["recall"] >= 0.8


def test_checksums_decide(detector: PresidioDetector) -> None:
    text = "Valid card 4111 1111 1111 1111, invalid 4111 1111 1111 1112; IBAN GB82 WEST 1234 5698 7654 32, " \
           "bad GB83 WEST 1234 5698 7654 32; mail ann@example.org, not ann@example.invalidtld."
    found = {(f.entity, text[f.start:f.end]) for f in detector.detect(text, ENTITIES)}
    assert ("CREDIT_CARD", "4111 1111 1111 1111") in found and not any("1112" in v for _, v in found)
    assert ("IBAN_CODE", "GB82 WEST 1234 5698 7654 32") in found and not any("GB83" in v for _, v in found)
    assert ("EMAIL_ADDRESS", "ann@example.org") in found
    assert not any("invalidtld" in v for k, v in found if k == "EMAIL_ADDRESS")


class FakeOpenAI:
    """An OpenAI-compatible server that records every request body and answers by quoting the last message
    back, streamed in small pieces (so placeholders arrive cut in two)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers["content-length"]))
                outer.bodies.append(raw)
                body = json.loads(raw)
                if self.path.endswith("/embeddings"):
                    data = {"data": [{"index": i, "embedding": [0.1] * 8} for i in range(len(body["input"]))]}
                    payload = json.dumps(data).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                said = body["messages"][-1]["content"]
                pieces = [said[i:i + 3] for i in range(0, len(said), 3)]
                events = [{"choices": [{"delta": {"content": "You said: "}}]}] + \
                         [{"choices": [{"delta": {"content": p}}]} for p in pieces] + \
                         [{"choices": [{"delta": {}, "finish_reason": "stop"}]}]
                stream = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(stream)))
                self.end_headers()
                self.wfile.write(stream)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def remote() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def test_a_remote_model_never_receives_inserted_personal_data(runtime: Runtime, remote: FakeOpenAI) -> None:
    from fastapi.testclient import TestClient

    from plait.serve.app import create_app
    from plait.serve.auth import KeyStore, ensure_local_key
    from plait.tasks.generate import chat

    runtime.catalog.add(ModelSpec(name="hosted", backend="openai", capabilities=("chat", "complete", "embed"),
                                  source=remote.url))
    docs = labelled_set(12, seed=11)
    secrets = [(k, d.text[a:b]) for d in docs for k, a, b in d.spans
               if k in ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD")]
    assert len(secrets) >= 6
    from plait.models.base import Message

    for doc in docs[:6]:
        answer = chat([Message("user", doc.text)], model="hosted", runtime=runtime)
        assert answer.text == "You said: " + doc.text  # the placeholders were put back for the person
    app = create_app(runtime.settings, runtime=runtime)
    key = ensure_local_key(KeyStore(runtime.store), runtime.settings.home)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        auth = {"Authorization": f"Bearer {key}"}
        for doc in docs[6:]:
            r = client.post("/v1/chat/completions", headers=auth, json={
                "model": "hosted", "messages": [{"role": "user", "content": doc.text}]})
            assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "You said: " + doc.text
        r = client.post("/v1/embeddings", headers=auth, json={"model": "hosted", "input": [d.text for d in docs]})
        assert r.status_code == 200
        audit = client.get("/v1/security/audit?kind=request", headers=auth).json()["events"]
    sent = b"\n".join(remote.bodies).decode()
    assert len(remote.bodies) >= 13  # 12 chats, the embeddings (and the embedder's dimension probe)
    for kind, value in secrets:
        assert value not in sent, (kind, value)
        if kind != "EMAIL_ADDRESS":
            assert _digits(value) not in _digits(sent), (kind, value)
    assert "<EMAIL_ADDRESS_1>" in sent and "<CREDIT_CARD_1>" in sent or "<PHONE_NUMBER_1>" in sent
    egress = [e for row in audit for e in row["detail"].get("egress", [])]
    assert egress and all(e["backend"] == remote.url and e["redacted"] > 0 for e in egress)


def test_redaction_can_be_turned_off_per_model(runtime: Runtime, remote: FakeOpenAI) -> None:
    from plait.models.base import Message
    from plait.tasks.generate import chat

    runtime.catalog.add(ModelSpec(name="trusted", backend="openai", capabilities=("chat",), source=remote.url,
                                  options={"redact": False}))
    chat([Message("user", "write to ann@example.org")], model="trusted", runtime=runtime)
    assert b"ann@example.org" in remote.bodies[-1]
