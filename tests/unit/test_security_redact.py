"""Redaction with a fake detector: placeholders, the vault and restore, streams cut inside a placeholder, the
remote backend (never sending what was found), log lines and indexing; and Presidio's pattern recognizers
(no model) on checksums."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from plait.errors import InputError
from plait.models.base import Message
from plait.models.remote import RemoteModel
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from plait.security.pii import Detector, Finding, resolve_overlaps
from plait.security.placeholders import StreamRestorer, Vault, apply
from plait.tasks.redact import RedactRequest, redact, restore

PATTERNS = {"EMAIL_ADDRESS": r"[\w.]+@[\w.]+\w",
            "PERSON": r"\b(?:Anna Berg|Anna|Tom)\b", "PHONE_NUMBER": r"\+\d[\d ]{8,}\d"}


class FakeDetector(Detector):
    """Finds what the regular expressions above match: enough to test everything around detection."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, text: str, entities: Sequence[str]) -> list[Finding]:
        self.calls += 1
        found = [Finding(kind, m.start(), m.end(), 0.9) for kind, pattern in PATTERNS.items() if kind in entities
                 for m in re.finditer(pattern, text)]
        return resolve_overlaps(found)


def test_placeholders_are_numbered_per_value_and_restored() -> None:
    vault = Vault()
    text = "Anna Berg wrote to tom@x.org, then Anna Berg wrote to ann@y.org."
    redacted, done = apply(text, FakeDetector().detect(text, list(PATTERNS)), vault)
    assert redacted == "<PERSON_1> wrote to <EMAIL_ADDRESS_1>, then <PERSON_1> wrote to <EMAIL_ADDRESS_2>."
    assert [d.placeholder for d in done] == ["<PERSON_1>", "<EMAIL_ADDRESS_1>", "<PERSON_1>", "<EMAIL_ADDRESS_2>"]
    assert vault.restore(redacted) == text
    assert vault.restore("unknown <PERSON_9> stays") == "unknown <PERSON_9> stays"


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 7])
def test_a_streamed_answer_is_restored_even_when_placeholders_are_cut(cut: int) -> None:
    vault = Vault()
    vault.placeholder("PERSON", "Anna Berg")
    vault.placeholder("EMAIL_ADDRESS", "anna@example.org")
    answer = "Dear <PERSON_1>, I wrote to <EMAIL_ADDRESS_1>. 3 < 4 and <b> stay."
    restorer = StreamRestorer(vault)
    pieces = [restorer.feed(answer[i:i + cut]) for i in range(0, len(answer), cut)] + [restorer.flush()]
    assert "".join(pieces) == "Dear Anna Berg, I wrote to anna@example.org. 3 < 4 and <b> stay."


def test_redact_keeps_a_vault_only_when_asked(fake_models: Runtime) -> None:
    text = "Call Anna on +44 20 7946 0958 or write to anna@example.org. Anna knows."
    result = redact(text, detector=FakeDetector(), runtime=fake_models)
    assert result.text == "Call <PERSON_1> on <PHONE_NUMBER_1> or write to <EMAIL_ADDRESS_1>. <PERSON_1> knows."
    assert result.counts == {"PERSON": 2, "PHONE_NUMBER": 1, "EMAIL_ADDRESS": 1} and result.vault is None
    assert "anna@example.org" not in json.dumps(result.__dict__, default=str)  # the result carries no originals
    kept = redact(text, detector=FakeDetector(), keep=True, runtime=fake_models)
    assert kept.vault and restore(kept.text, kept.vault, runtime=fake_models) == text
    assert restore("<PERSON_1> replied", kept.vault, runtime=fake_models) == "Anna replied"
    masked = redact(text, detector=FakeDetector(), mode="mask", runtime=fake_models)
    assert masked.text == "Call <PERSON> on <PHONE_NUMBER> or write to <EMAIL_ADDRESS>. <PERSON> knows."
    only = redact(text, entities=["EMAIL_ADDRESS"], detector=FakeDetector(), runtime=fake_models)
    assert only.text == "Call Anna on +44 20 7946 0958 or write to <EMAIL_ADDRESS_1>. Anna knows."
    with pytest.raises(InputError, match="unknown kind"):
        redact(text, entities=["SHOE_SIZE"], detector=FakeDetector())  # type: ignore[list-item]
    with pytest.raises(InputError, match="no redaction vault"):
        restore("x", "nope", runtime=fake_models)


def test_the_request_model_is_strict() -> None:
    assert RedactRequest(text="hi").names is True
    with pytest.raises(ValueError):
        RedactRequest(text="hi", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        RedactRequest(text="hi", entities=["SHOE_SIZE"])  # type: ignore[list-item]


SPEC = ModelSpec(name="hosted", backend="openai", capabilities=("chat", "complete", "embed"),
                 source="http://hosted.test/v1")


def test_remote_requests_carry_placeholders_and_answers_come_back_restored() -> None:
    sent: list[dict] = []

    def server(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        sent.append(body)
        if request.url.path.endswith("/embeddings"):
            return httpx.Response(200, json={"data": [{"index": i, "embedding": [1.0, 0.0]}
                                                      for i in range(len(body["input"]))]})
        said = body["messages"][-1]["content"]
        events = [{"choices": [{"delta": {"content": said[i:i + 4]}}]} for i in range(0, len(said), 4)]
        stream = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx.Response(200, content=stream.encode(), headers={"content-type": "text/event-stream"})

    detector = FakeDetector()
    model = RemoteModel(SPEC, transport=httpx.MockTransport(server), detector=detector)
    out = model.chat([Message("system", "Anna is the user."), Message("user", "Mail anna@example.org for Anna")])
    assert out.text == "Mail anna@example.org for Anna"
    assert sent[0]["messages"] == [{"role": "system", "content": "<PERSON_1> is the user."},
                                   {"role": "user", "content": "Mail <EMAIL_ADDRESS_1> for <PERSON_1>"}]
    model.embed_batch(["Tom at tom@x.org"])
    assert sent[1]["input"] == ["<PERSON_1> at <EMAIL_ADDRESS_1>"]
    plain = RemoteModel(SPEC.model_copy(update={"options": {"redact": False}}), transport=httpx.MockTransport(server))
    plain.chat([Message("user", "anna@example.org")])
    assert sent[-1]["messages"][0]["content"] == "anna@example.org"


def test_log_lines_are_redacted_but_loopback_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    from plait.security.logs import RedactingFilter, redact_line

    line = '{"client": "127.0.0.1", "from": "203.0.113.9", "user": "ann@example.org", "card": "4111111111111111"}'
    assert redact_line(line) == ('{"client": "127.0.0.1", "from": "<IP_ADDRESS>", "user": "<EMAIL_ADDRESS>", '
                                 '"card": "<CREDIT_CARD>"}')
    logger = logging.getLogger("plait.test.redact")
    handler = logging.Handler()
    handler.addFilter(RedactingFilter())
    seen: list[str] = []
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.warning("could not read %s", "mail from bo@example.org")
    logger.warning('{"ts": 1796287643.012, "client": "198.51.100.7", "path": "/v1/models", "status": 200}')
    logger.removeHandler(handler)
    assert seen[0] == "could not read mail from <EMAIL_ADDRESS>"
    # A structured line stays valid JSON: numbers (a Unix time looks like a phone number) are left alone.
    assert json.loads(seen[1]) == {"ts": 1796287643.012, "client": "<IP_ADDRESS>", "path": "/v1/models",
                                   "status": 200}


def test_documents_can_be_redacted_before_indexing(fake_models: Runtime, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.index import open_index
    from plait.tasks import redact as redact_module

    fake = FakeDetector()
    monkeypatch.setattr(redact_module, "default_detector", lambda nlp=True: fake)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Anna Berg can be reached at anna@example.org about the garden.\n")
    rt = Runtime(fake_models.settings.model_copy(update={"redact_index": True}))
    from tests.fakes import FAKE_SPECS

    for spec in FAKE_SPECS:
        rt.catalog.add(spec, replace=True)
    open_index(rt).add([docs])
    texts = [r[0] for r in rt.store.query("SELECT text FROM index_chunks")]
    assert texts and all("anna@example.org" not in t and "Anna" not in t for t in texts)
    assert "<EMAIL_ADDRESS>" in texts[0] and "garden" in texts[0] and fake.calls > 0
    rt.close()
