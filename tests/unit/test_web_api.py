"""The web page's sign-in and the API it uses (fake models): sessions and CSRF, conversations, the index,
workflows and Today, the catalog, settings and keys."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from plait.web.sessions import COOKIE, CSRF_HEADER, new_signin_token


@pytest.fixture
def app(fake_models: Runtime) -> Any:
    return create_app(fake_models.settings, runtime=fake_models)


@pytest.fixture
def page(app: Any, fake_models: Runtime) -> Iterator[TestClient]:
    """A browser signed in through a one-time link (the cookie only, no API key)."""
    with TestClient(app, base_url="http://127.0.0.1:8434") as client:
        token = new_signin_token(fake_models.store)
        r = client.get(f"/signin?token={token}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        session = client.get("/v1/session").json()
        client.headers[CSRF_HEADER] = session["csrf"]
        yield client


def test_the_page_is_served_with_a_strict_policy(app: Any) -> None:
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get("/")
        assert r.status_code == 200 and "<script type=\"module\" src=\"/static/js/app.js\">" in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert client.get("/static/js/app.js").headers["content-type"].startswith("text/javascript")
        for bad in ("../app.py", "js/../../routes.py", "x.py", "js/views/../../sessions.py"):
            assert client.get(f"/static/{bad}").status_code == 404


def test_a_signin_link_works_once(app: Any, fake_models: Runtime) -> None:
    token = new_signin_token(fake_models.store)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/v1/session").status_code == 401
        assert client.get(f"/signin?token={token}", follow_redirects=False).status_code == 303
        assert client.get("/v1/session").json()["signed_in"] is True
    with TestClient(app, base_url="http://127.0.0.1") as other:
        assert other.get(f"/signin?token={token}", follow_redirects=False).status_code == 401  # spent
        assert other.get("/signin?token=made-up").status_code == 401
        assert other.get("/v1/session").status_code == 401


def test_changes_by_cookie_need_the_csrf_token_and_the_pages_origin(page: TestClient) -> None:
    assert page.post("/v1/conversations", json={}).status_code == 201
    csrf = page.headers.pop(CSRF_HEADER)
    r = page.post("/v1/conversations", json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
    r = page.post("/v1/conversations", json={}, headers={CSRF_HEADER: csrf, "Origin": "http://evil.example"})
    assert r.status_code == 403
    assert page.post("/v1/conversations", json={}, headers={CSRF_HEADER: csrf,
                                                           "Origin": "http://127.0.0.1:8434"}).status_code == 201
    assert page.get("/v1/conversations").status_code == 200  # reading needs no token
    with TestClient(page.app, base_url="http://127.0.0.1", cookies={COOKIE: "not-a-session"}) as stranger:
        r = stranger.get("/v1/conversations")
        assert r.status_code == 401 and r.json()["error"]["code"] == "session_expired"


def test_a_conversation_keeps_its_turns_and_a_stopped_answer(page: TestClient, fake_models: Runtime) -> None:
    made = page.post("/v1/conversations", json={"model": "fake-chat", "system": "Be brief."}).json()
    r = page.post(f"/v1/conversations/{made['id']}/reply", json={"content": "hello there friend"})
    events = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
    assert [e["type"] for e in events][-1] == "result" and events[-1]["text"].startswith("echo:")
    kept = page.get(f"/v1/conversations/{made['id']}").json()
    assert kept["title"] == "hello there friend" and kept["system"] == "Be brief."
    assert [(m["role"], m["stopped"]) for m in kept["messages"]] == [("user", False), ("assistant", False)]
    r = page.post(f"/v1/conversations/{made['id']}/reply", json={"content": "a long one " * 50, "max_tokens": 3,
                                                                  "stream": False})
    assert r.status_code == 200 and r.json()["finish_reason"] == "length"
    assert len(page.get(f"/v1/conversations/{made['id']}").json()["messages"]) == 4
    assert page.get("/v1/conversations").json()[0]["id"] == made["id"]
    assert page.delete(f"/v1/conversations/{made['id']}").status_code == 204
    assert page.get(f"/v1/conversations/{made['id']}").status_code == 400


def test_a_reply_that_fails_before_answering_keeps_no_turn(page: TestClient, fake_models: Runtime,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes import FakeChat

    made = page.post("/v1/conversations", json={"model": "fake-chat"}).json()
    url = f"/v1/conversations/{made['id']}/reply"
    assert page.post(url, json={"content": "hello", "model": "no-such-model"}).status_code == 404

    def too_long(self: FakeChat, request: Any) -> Any:
        raise ValueError("the prompt is longer than the context")
        yield  # a generator, as a model's stream is

    with monkeypatch.context() as patched:
        patched.setattr(FakeChat, "stream", too_long)
        assert page.post(url, json={"content": "hello", "stream": False}).status_code == 400
    kept = page.get(f"/v1/conversations/{made['id']}").json()
    assert kept["messages"] == [] and kept["title"] == ""
    assert page.post(url, json={"content": "hello", "stream": False}).status_code == 200  # the retry
    kept = page.get(f"/v1/conversations/{made['id']}").json()
    assert [m["role"] for m in kept["messages"]] == ["user", "assistant"] and kept["title"] == "hello"


def test_a_long_conversation_sends_its_newest_turns_within_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.models.base import Message
    from plait.serve.routes import conversations

    monkeypatch.setattr(conversations, "MAX_MESSAGES", 4)
    monkeypatch.setattr(conversations, "MAX_PROMPT_CHARS", 30)
    history = [Message("system", "brief"), *(Message("user" if i % 2 else "assistant", f"turn {i}")
                                             for i in range(1, 9))]
    sent = conversations._recent(history, "question")
    assert [m["content"] for m in sent] == ["brief", "turn 7", "turn 8", "question"]  # 4 messages
    monkeypatch.setattr(conversations, "MAX_MESSAGES", 100)
    sent = conversations._recent(history, "question")  # 30 - 8 - 5 = 17 characters: two turns of 6
    assert [m["content"] for m in sent] == ["brief", "turn 7", "turn 8", "question"]
    assert conversations._recent([], "hi") == [{"role": "user", "content": "hi"}]


def test_index_add_runs_as_a_job_and_passages_read_back(page: TestClient, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "kayak.txt").write_text("The kayak trip starts at dawn on Saturday.")
    (folder / "junk.bin").write_bytes(b"\x00\x01" * 50)
    assert page.post("/v1/index/add", json={"paths": [str(tmp_path / "nope")]}).status_code == 400
    job = page.post("/v1/index/add", json={"paths": [str(folder)], "collection": "trips"}).json()
    for _ in range(200):
        job = page.get(f"/v1/jobs/{job['id']}").json()
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["state"] == "done" and job["result"]["new"] == 1 and len(job["result"]["skipped"]) == 1
    status = page.get("/v1/index").json()
    assert status["collections"][0]["name"] == "trips" and status["skipped"][0]["path"].endswith("junk.bin")
    hit = page.post("/v1/search", json={"query": "kayak"}).json()["hits"][0]
    passage = page.get(f"/v1/index/passages/{hit['chunk_id']}").json()
    assert "kayak" in passage["text"] and passage["document"]["source"].endswith("kayak.txt")
    assert page.get(f"/v1/index/documents/{passage['document']['id']}").json()["passages"]
    assert page.get("/v1/index/passages/999999").status_code == 400
    assert page.delete("/v1/index/collections/trips").json()["files"] == 2


def test_workflows_enable_run_outputs_and_today(page: TestClient, fake_models: Runtime, tmp_path: Path) -> None:
    bundled = page.get("/v1/workflows/bundled").json()
    assert {"inbox-triage", "meeting-requests"} <= {b["name"] for b in bundled}
    assert page.post("/v1/workflows/..%2F..%2Fetc%2Fpasswd/enable").status_code in (400, 404)
    assert page.post("/v1/workflows/feed-reader/enable").json()["file"].endswith("feed-reader.yml")
    assert next(b for b in page.get("/v1/workflows/bundled").json() if b["name"] == "feed-reader")["enabled"]
    assert page.get("/v1/workflows/feed-reader/outputs").json()["files"] == []
    out = fake_models.settings.home / "output" / "feed-reader"
    out.mkdir(parents=True)
    (out / "digest.md").write_text("# Reading list")
    assert page.get("/v1/workflows/feed-reader/outputs/digest.md").text == "# Reading list"
    assert page.get("/v1/workflows/feed-reader/outputs/..%2F..%2Fplait.db").status_code == 404
    assert page.post("/v1/workflows/feed-reader/disable").status_code == 200
    assert not next(b for b in page.get("/v1/workflows/bundled").json() if b["name"] == "feed-reader")["enabled"]
    assert page.post("/v1/workflows/feed-reader/enable").status_code == 200  # back, as it was
    today = page.get("/v1/today").json()
    assert today["sections"] == [] and "feed-reader" in today["enabled"]


def test_catalog_settings_and_keys(page: TestClient, fake_models: Runtime) -> None:
    catalog = {m["name"]: m for m in page.get("/v1/catalog").json()}
    assert catalog["fake-chat"]["capabilities"] == ["chat", "complete"] and "status" in catalog["smollm2"]
    r = page.post("/v1/catalog", json={"name": "mine", "source": "/no/such/model.gguf"})
    assert r.status_code == 400
    settings = page.get("/v1/settings").json()
    assert settings["chat_model"]["value"] == "fake-chat"
    assert page.put("/v1/settings/max_tokens", json={"value": "lots"}).status_code == 400
    assert page.put("/v1/settings/max_tokens", json={"value": "300"}).status_code == 200
    made = page.post("/v1/keys", json={"name": "editor", "scopes": ["chat"]}).json()
    assert made["secret"].startswith("plait-")
    keys = page.get("/v1/keys").json()
    assert all("secret" not in k for k in keys) and any(k["name"] == "editor" for k in keys)
    assert page.delete(f"/v1/keys/{made['id']}").json()[0]["revoked_at"]
    assert page.get("/v1/runs").json() == [] and page.get("/v1/reports").json() == []
    tasks = {t["name"]: t for t in page.get("/v1/tasks").json()}
    assert tasks["summarize"]["request"]["properties"]["text"]["type"] == "string"
    assert tasks["see"]["file_input"] and tasks["ask"]["streams"]


def test_a_key_without_admin_cannot_change_the_index_or_settings(app: Any, fake_models: Runtime) -> None:
    key = KeyStore(fake_models.store).create("reader", ["chat", "index"]).secret
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.get("/v1/index").status_code == 200
        assert client.post("/v1/index/add", json={"paths": ["/"]}).status_code == 403
        assert client.get("/v1/settings").status_code == 403
        assert client.get("/v1/keys").status_code == 403
    ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
