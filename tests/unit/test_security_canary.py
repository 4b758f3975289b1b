"""The canary scan: personal text goes in through every door (the index, workflows with every sink that keeps
files in the home, a webhook delivery, chat over HTTP, the audit log), then every byte under PLAIT_HOME is
searched for it: database, WAL, vector files, logs, outputs. An encrypted home holds it nowhere in plain
text; the same run on a home kept unencrypted finds it, so the scan can fail."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from plait.index import open_index
from plait.runtime import Runtime
from plait.security.crypto import is_sealed
from plait.security.keys import mark_plaintext
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from plait.tasks.search import search
from plait.workflows.engine import Engine
from plait.workflows.webhook_keys import create_webhook_key
from tests import workflow_helpers as h
from tests.fakes import fake_runtime

WORKFLOW = """name: canary
trigger: {type: manual}
steps:
  - id: line
    template: "{{ item.subject }}: {{ item.text }}"
  - sink: file
    with: {path: "notes/{{ key_slug }}.md"}
  - sink: table
    with: {table: seen, columns: {text: "{{ line }}"}}
  - sink: digest
    with: {path: "digest/{period}", period: all, heading: "{{ item.subject }}", text: "{{ item.text }}", chart: false}
  - sink: mail
    with: {folder: drafts, to: "ann@example.org", subject: "Re: {{ item.subject }}", body: "{{ line }}"}
"""
HOOK = """name: hook
trigger: {type: webhook}
steps:
  - sink: file
    with: {path: "{{ key_slug }}.json"}
"""


def _fill(home: Path, tmp: Path, canary: str) -> Runtime:
    """Put the canary in through every door; the runtime stays open so the WAL is still there to scan."""
    rt = fake_runtime(home)
    docs = tmp / "docs"
    docs.mkdir()
    (docs / "memo.txt").write_text(f"The password hint is {canary} and the meeting is on Friday.\n")
    (docs / "notes.md").write_text(f"# Plans\n\nAnna wrote {canary} on the whiteboard.\n")
    (docs / "inbox.mbox").write_text(f"From ann@example.org Mon Mar  4 10:00:00 2024\nFrom: ann@example.org\n"
                                     f"Subject: {canary}\nDate: Mon, 4 Mar 2024 10:00:00 +0000\n\n"
                                     f"Body with {canary} inside.\n\n")
    index = open_index(rt)
    index.add([docs])
    assert search(canary, runtime=rt).hits  # searchable as before: encryption is below SQLite
    index.vectors().save()

    h.reset()
    wf = h.workflow(tmp, WORKFLOW)
    engine = Engine(wf, rt)
    engine.submit({"subject": f"Re {canary}", "text": f"remember {canary} tomorrow"}, key="k1")
    assert engine.run().done == 1

    folder = home / "workflows"
    folder.mkdir(exist_ok=True)
    (folder / "hook.yml").write_text(HOOK)
    hook_key = create_webhook_key(rt.store, "hook")
    app = create_app(rt.settings, runtime=rt)
    key = ensure_local_key(KeyStore(rt.store), home)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        auth = {"Authorization": f"Bearer {key}"}
        r = client.post("/v1/chat/completions", headers=auth, json={
            "model": "fake-chat", "messages": [{"role": "user", "content": f"my secret is {canary}"}]})
        assert r.status_code == 200 and canary in r.text
        assert client.post("/v1/search", headers=auth, json={"query": canary}).status_code == 200
        assert client.post("/v1/workflows/hook/webhook", headers={"X-Plait-Webhook-Key": hook_key},
                           json={"note": canary}).status_code == 202
    Engine(h.workflow(tmp, HOOK, name="hook.yml"), rt).run()
    return rt


def _scan(home: Path, canary: str) -> list[str]:
    """Every file under ``home`` holding the canary in any case (FTS5 keeps tokens lower-cased)."""
    needles = {canary.encode(), canary.lower().encode(), canary.encode("utf-16-le")}
    found = []
    for root, _, files in os.walk(home):
        for name in files:
            path = Path(root, name)
            data = path.read_bytes()
            if any(n in data or n in data.lower() for n in needles):
                found.append(str(path.relative_to(home)))
    return sorted(found)


@pytest.fixture
def access_log(plait_home: Path) -> logging.Handler:
    from plait.cli.serve import _access_log
    from plait.settings import load_settings

    _access_log(None, load_settings(home=plait_home))
    logger = logging.getLogger("plait.access")
    yield logger.handlers[0]
    for handler in logger.handlers:
        handler.close()
    logger.handlers.clear()


def test_no_canary_in_plain_text_anywhere_in_an_encrypted_home(plait_home: Path, tmp_path: Path,
                                                               access_log: logging.Handler) -> None:
    canary = "Zephyrcanary" + secrets.token_hex(6)
    rt = _fill(plait_home, tmp_path, canary)
    files = [p for p in plait_home.rglob("*") if p.is_file()]
    names = {str(p.relative_to(plait_home)) for p in files}
    # Every kind of place personal data goes was written, WAL included:
    assert {"plait.db", "plait.db-wal", "workflows/tables.db", "logs/access.log"} <= names, names
    assert any(n.startswith("index/vectors/") and n.endswith(".hnsw") for n in names)
    assert any(n.startswith("output/canary/notes/") for n in names) and any("drafts" in n for n in names)
    assert (plait_home / "logs" / "access.log").stat().st_size > 0
    assert _scan(plait_home, canary) == []
    rt.close()
    for path in files:
        rel = str(path.relative_to(plait_home))
        if rel.startswith(("output/", "index/vectors/")) and not rel.endswith("current.json"):
            assert is_sealed(path.read_bytes()), rel


def test_the_scan_finds_the_canary_in_a_home_kept_unencrypted(plait_home: Path, tmp_path: Path) -> None:
    mark_plaintext(plait_home)
    canary = "Zephyrcanary" + secrets.token_hex(6)
    rt = _fill(plait_home, tmp_path, canary)
    found = _scan(plait_home, canary)
    rt.close()
    assert any(f.startswith("plait.db") for f in found), found
    assert "workflows/tables.db" in found or "workflows/tables.db-wal" in found
    assert any(f.startswith("output/canary/") for f in found) and any(f.startswith("output/hook/") for f in found)
