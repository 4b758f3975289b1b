"""Each attack found by probing `plait serve` as an attacker would, as a regression test. Every one of these
passed for the attacker on the code before the fixes (the comment under each says what happened then)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from plait.models.base import Message
from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key, local_key_path
from plait.serve.errors import _INTERNAL
from plait.workflows.engine import Engine
from plait.workflows.webhook_keys import create_webhook_key
from tests import workflow_helpers as h
from tests.homes import read_text


@pytest.fixture(autouse=True)
def _reset() -> None:
    h.reset()


def _client(rt: Runtime, **settings: Any) -> TestClient:
    app = create_app(rt.settings.model_copy(update=settings), runtime=rt)
    return TestClient(app, base_url="http://127.0.0.1")


def _hooked(rt: Runtime, workflow: str, **settings: Any) -> tuple[TestClient, str]:
    folder = rt.settings.home / "workflows"
    folder.mkdir(exist_ok=True)
    name = workflow.split("\n", 1)[0].split(":", 1)[1].strip()
    (folder / f"{name}.yml").write_text(workflow)
    return _client(rt, **settings), create_webhook_key(rt.store, name)


def _run_workflow(rt: Runtime, name: str) -> Any:
    from plait.workflows.loader import load_workflow

    return Engine(load_workflow(rt.settings.home / "workflows" / f"{name}.yml"), rt).run()


def test_dns_rebinding_cannot_read_the_index_with_auth_off(fake_models: Runtime) -> None:
    with _client(fake_models, api_auth=False) as client:
        rebound = client.post("/v1/search", json={"query": "budget"}, headers={"Host": "rebind.evil.example"})
        assert rebound.status_code == 400 and rebound.json()["error"]["code"] == "untrusted_host"
        # (before: 200 with the index's passages)
        for host in ("127.0.0.1:8434", "localhost", "[::1]:8434"):
            assert client.post("/v1/search", json={"query": "budget"}, headers={"Host": host}).status_code == 200


def test_a_configured_host_name_is_trusted(fake_models: Runtime) -> None:
    with _client(fake_models, api_auth=False, trusted_hosts=("laptop.lan",)) as client:
        assert client.get("/v1/models", headers={"Host": "laptop.lan:8434"}).status_code == 200
        assert client.get("/v1/models", headers={"Host": "laptop.lan.evil.example"}).status_code == 400


COPY = """name: grab
trigger: {type: webhook}
steps:
  - sink: copy
    with: {to: grabbed}
"""


def test_a_webhook_cannot_choose_the_file_a_sink_copies(fake_models: Runtime) -> None:
    home = fake_models.settings.home
    ensure_local_key(KeyStore(fake_models.store), home)
    client, key = _hooked(fake_models, COPY)
    with client:
        r = client.post("/v1/workflows/grab/webhook", json={"path": str(local_key_path(home))},
                        headers={"X-Plait-Webhook-Key": key})
        assert r.status_code == 202
    summary = _run_workflow(fake_models, "grab")
    assert summary.failed == 1 and not (home / "output" / "grab" / "grabbed").exists()
    # (before: the sender's "path" became item.path and the admin key was copied into the output folder)
    item = h.state(fake_models, "grab").items()[0]
    assert "path" not in item.data and item.data["body"] == {"path": str(local_key_path(home))}


READ = """name: peek
trigger: {type: webhook}
steps:
  - id: doc
    task: read
  - sink: file
    with: {path: peek.txt, content: "{{ doc.text }}"}
"""


def test_a_webhook_body_cannot_name_the_file_a_read_step_reads(fake_models: Runtime) -> None:
    from plait.security.storage import write_bytes

    home = fake_models.settings.home
    secret = home / "private-notes.txt"
    write_bytes(secret, b"the owner's private notes")  # sealed: the home is encrypted
    client, key = _hooked(fake_models, READ)
    with client:
        r = client.post("/v1/workflows/peek/webhook", content=str(secret),
                        headers={"X-Plait-Webhook-Key": key, "Content-Type": "text/plain"})
        assert r.status_code == 202
    summary = _run_workflow(fake_models, "peek")
    assert summary.failed == 1 and "give its `path`" in summary.errors[0]
    assert not (home / "output" / "peek" / "peek.txt").exists()
    # (before: the body became the path, and the file was read, decrypted, into the output folder)


NAMED = """name: named
trigger: {type: webhook}
steps:
  - sink: file
    with: {path: "{{ item.body.name }}.txt", content: "x"}
"""


def test_a_webhook_field_cannot_read_the_environment_or_pick_an_absolute_path(
        fake_models: Runtime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_TOKEN", "s3cr3t-value")
    client, key = _hooked(fake_models, NAMED)
    elsewhere = tmp_path / "elsewhere" / "planted"
    with client:
        for name in ("${SECRET_TOKEN}", "~/planted", str(elsewhere), "../../escaped"):
            client.post("/v1/workflows/named/webhook", json={"name": name}, headers={"X-Plait-Webhook-Key": key})
    summary = _run_workflow(fake_models, "named")
    out = fake_models.settings.home / "output" / "named"
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["${SECRET_TOKEN}.txt", "~/planted.txt"]  # the sender's text, never expanded
    # (before: a file named s3cr3t-value.txt; one written at tmp/elsewhere/planted.txt)
    assert not any("s3cr3t" in p.name for p in fake_models.settings.home.rglob("*"))
    assert not elsewhere.with_suffix(".txt").exists() and not (Path.home() / "planted.txt").exists()
    assert summary.failed == 2 and all("absolute path" in e or "leaves the output folder" in e
                                       for e in summary.errors)


def test_the_author_may_still_write_absolute_and_environment_paths(fake_models: Runtime, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTES_DIR", str(tmp_path / "notes"))
    wf = h.workflow(tmp_path, """name: author
trigger: {type: manual}
steps:
  - sink: file
    with: {path: "${NOTES_DIR}/{{ item.title }}.md", content: "hi"}
""")
    engine = Engine(wf, fake_models)
    engine.submit({"title": "monday"}, key="a")
    engine.submit({"title": "../../outside"}, key="b")
    summary = engine.run()
    assert (tmp_path / "notes" / "monday.md").read_text() == "hi"  # outside the home: the author's own folder
    assert summary.done == 1 and "leaves the folder" in summary.errors[0]


class _Loopback:
    """A service on this machine that must not be reachable from a workflow: it records every request."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits.append(self.path)
                body = b"LOOPBACK-ADMIN-SECRET"
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[_Loopback]:
    service = _Loopback()
    yield service
    service.close()


def test_workflow_requests_cannot_reach_loopback_unless_allowed(fake_models: Runtime, tmp_path: Path,
                                                                loopback: _Loopback) -> None:
    steps = """steps:
  - id: fetched
    http: {url: "{{ item.url }}"}
  - sink: webhook
    with: {url: "{{ item.url }}/post", json: "{{ fetched }}"}
"""
    wf = h.workflow(tmp_path, "name: ssrf\ntrigger: {type: manual}\n" + steps)
    engine = Engine(wf, fake_models)
    engine.submit({"url": loopback.url + "/admin"}, key="a")
    summary = engine.run()
    assert summary.failed == 1 and "loopback address" in summary.errors[0] and loopback.hits == []
    # (before: the loopback service's answer was fetched, then posted on)
    allowed = h.workflow(tmp_path, f"name: ok\ntrigger: {{type: manual}}\nnetwork: {{allow: "
                                   f"['127.0.0.1:{loopback.server.server_address[1]}']}}\n" + steps, name="ok.yml")
    engine = Engine(allowed, fake_models)
    engine.submit({"url": loopback.url + "/admin"}, key="a")
    assert engine.run().done == 1 and loopback.hits == ["/admin", "/admin/post"]


def test_the_guard_checks_every_address_every_redirect_and_pins_the_connection() -> None:
    from plait.security.ssrf import GuardedTransport, NetworkPolicy, OutboundRefused

    addresses = {"public.example": ["93.184.216.34"], "mixed.example": ["93.184.216.34", "10.0.0.5"],
                 "metadata.example": ["169.254.169.254"], "v6.example": ["::ffff:127.0.0.1"]}
    seen: list[tuple[str, str, str | None]] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers["host"], request.extensions.get("sni_hostname")))
        if request.url.path == "/go":
            return httpx.Response(302, headers={"location": "http://127.0.0.1:8080/admin"})
        return httpx.Response(200, text="ok")

    def client(redirects: int) -> httpx.Client:
        transport = GuardedTransport(httpx.MockTransport(upstream), NetworkPolicy((), redirects),
                                     resolver=lambda host, port: addresses[host])
        return httpx.Client(transport=transport, follow_redirects=redirects > 0, max_redirects=max(1, redirects))

    with client(0) as c:
        assert c.get("https://public.example/x").status_code == 200
        assert seen[-1] == ("93.184.216.34", "public.example", "public.example")  # pinned; name kept for TLS
        assert c.get("http://public.example/go").status_code == 302  # redirects off by default: not followed
        for url in ("http://mixed.example/", "http://metadata.example/", "http://v6.example/", "ftp://public.example/",
                    "http://[::1]:9/", "http://10.1.2.3/"):
            with pytest.raises(OutboundRefused):
                c.get(url)
    with client(3) as c, pytest.raises(OutboundRefused, match="loopback"):
        c.get("http://public.example/go")  # followed, and the second hop is checked again
    assert not any(host == "127.0.0.1" for host, _, _ in seen)


HOOK = """name: hook
trigger: {type: webhook}
steps:
  - template: "{{ item.body }}"
"""


def test_webhooks_have_a_rate_limit_a_pending_quota_and_store_the_body_once(fake_models: Runtime) -> None:
    client, key = _hooked(fake_models, HOOK, webhook_rate_per_minute=3)
    headers = {"X-Plait-Webhook-Key": key}
    with client:
        codes = [client.post("/v1/workflows/hook/webhook", json={"n": n}, headers=headers).status_code
                 for n in range(4)]
        assert codes == [202, 202, 202, 429]  # (before: no limit)
    data = h.state(fake_models, "hook").items()[0].data
    assert set(data) == {"body", "content_type", "received_from"}  # (before: body, text and every field: 3 copies)
    client, key = _hooked(fake_models, HOOK, webhook_pending_bytes=1_500)
    with client:
        payload = {"blob": "x" * 600}
        codes = [client.post("/v1/workflows/hook/webhook", json=payload, headers={"X-Plait-Webhook-Key": key}
                             ).status_code for _ in range(3)]
    assert codes == [202, 429, 429]  # ~900 bytes waiting, one more passes 1,500 (before: 20 posts grew it 60 MB)


def test_a_cross_site_form_post_to_a_webhook_is_refused(fake_models: Runtime) -> None:
    client, key = _hooked(fake_models, HOOK)
    with client:
        forged = client.post(f"/v1/workflows/hook/webhook?key={key}", content=b"a=1",
                             headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
        assert forged.status_code == 403  # (before: 202, an item added by any web page that knew the key)
        no_origin = client.post(f"/v1/workflows/hook/webhook?key={key}", content=b"a=1",
                                headers={"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"})
        assert no_origin.status_code == 403
        same_site = client.post(f"/v1/workflows/hook/webhook?key={key}", content=b"a=1",
                                headers={"Origin": "http://127.0.0.1"})
        assert same_site.status_code == 202


def test_wrong_keys_back_off_and_the_local_key_is_limited(fake_models: Runtime) -> None:
    secret = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
    local = KeyStore(fake_models.store).list()[0]
    assert local.name == "local" and local.rate_limit  # (before: None, unlimited)
    with _client(fake_models) as client:
        wrong = {"Authorization": "Bearer plait-" + "w" * 43}
        codes = [client.get("/v1/models", headers=wrong).status_code for _ in range(7)]
        assert codes == [401] * 6 + [429]  # (before: 401 for ever, as fast as one could send them)
        backing_off = client.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
        assert backing_off.status_code == 429 and int(backing_off.headers["retry-after"]) >= 1
        assert client.app.state.ctx.metrics.auth_failures._value.get() == 6  # type: ignore[attr-defined]


def test_a_huge_conversation_is_refused_before_any_token_is_counted(fake_models: Runtime) -> None:
    messages = [{"role": "user", "content": "hi"}] * 20_000
    with _client(fake_models) as client:
        key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
        auth = {"Authorization": f"Bearer {key}"}
        r = client.post("/v1/chat/completions", headers=auth, json={"model": "fake-chat", "messages": messages})
        assert r.status_code == 400 and "at most 1000" in r.json()["error"]["message"]
        r = client.post("/api/chat", headers=auth, json={"model": "fake-chat", "messages": messages})
        assert r.status_code == 400
        big = [{"role": "user", "content": "x" * 600_000}, {"role": "user", "content": "y" * 600_000}]
        assert client.post("/v1/chat/completions", headers=auth, json={"model": "fake-chat", "messages": big}
                           ).status_code in (400, 413)


def test_the_history_is_tokenised_once_per_message() -> None:
    from plait.tasks.generate import fit_history
    from tests.fakes import FakeChat

    class Counting(FakeChat):
        context_length = 64
        counted = 0

        def count_tokens(self, text: str) -> int:
            Counting.counted += 1
            return len(text.split())

    model = Counting(None)  # type: ignore[arg-type]
    history = [Message("system", "be brief")] + [Message("user", f"turn {i} words words") for i in range(500)]
    kept = fit_history(history, model, reserve=16)
    assert kept[0].role == "system" and kept[-1].content == "turn 499 words words" and len(kept) < 20
    assert Counting.counted == len(history)  # (before: the whole history again after every dropped turn)


def test_no_http_answer_shows_a_library_exception(fake_models: Runtime) -> None:
    pytest.importorskip("pocketsphinx")
    import base64

    fake_wav = base64.b64encode(b"RIFF" + b"\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40).decode()
    with _client(fake_models) as client:
        key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
        r = client.post("/v1/hear", json={"audio": fake_wav}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 400 and "not a readable WAV" in r.text
        assert not _INTERNAL.search(r.json()["error"]["message"])  # (before: "UnboundLocalError: cannot access…")


def test_docs_come_from_local_files(fake_models: Runtime) -> None:
    with _client(fake_models) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in page.text
        assert "cdn." not in page.text and "https://" not in page.text.split("<body>")[0]  # (before: jsdelivr)
        assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
        assert client.get("/redoc").status_code == 404
    with _client(fake_models, api_docs=False) as client:
        assert client.get("/docs").status_code == 404


def test_webhook_items_keep_text_bodies_as_text(fake_models: Runtime) -> None:
    client, key = _hooked(fake_models, HOOK)
    with client:
        client.post("/v1/workflows/hook/webhook", content=b"plain words", headers={"X-Plait-Webhook-Key": key})
    data = h.state(fake_models, "hook").items()[0].data
    assert data["text"] == "plain words" and "body" not in data
    assert json.dumps(data).count("plain words") == 1


def test_outputs_written_outside_the_home_stay_readable(fake_models: Runtime, tmp_path: Path) -> None:
    wf = h.workflow(tmp_path, f"""name: out
trigger: {{type: manual}}
output: {tmp_path / 'reports'}
steps:
  - sink: file
    with: {{path: "r.md", content: "report"}}
""")
    engine = Engine(wf, fake_models)
    engine.submit({}, key="a")
    engine.run()
    assert (tmp_path / "reports" / "r.md").read_text() == "report"  # the author's folder: not sealed
    assert read_text(tmp_path / "reports" / "r.md") == "report"


def test_a_request_cannot_name_a_folder_on_the_server_for_the_classifier_to_read(fake_models: Runtime,
                                                                                  tmp_path: Path) -> None:
    secret = tmp_path / "private" / "work"
    secret.mkdir(parents=True)
    (secret / "note.txt").write_text("a private note")
    with _client(fake_models, api_auth=False) as client:
        r = client.post("/v1/classify", json={"texts": "hello", "labels": ["work", "home"],
                                              "corrections": str(tmp_path / "private")})
        assert r.status_code == 400 and "corrections" in r.text
        # (before: the server read the folder: "/" walked the whole disk on every request)
        assert client.post("/v1/classify", json={"texts": "hello", "labels": ["work", "home"]}).status_code == 200
        forms = {t["name"]: t for t in client.get("/v1/tasks").json()}
        assert "corrections" not in forms["classify"]["request"]["properties"]
        api = client.get("/openapi.json").json()
        ref = api["paths"]["/v1/classify"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert "corrections" not in api["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]
