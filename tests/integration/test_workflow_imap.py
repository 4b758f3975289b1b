"""The IMAP trigger against a real IMAP server (dovecot, started by the test on a loopback port):
messages by UID, new mail arriving while the workflow runs, each message processed exactly once."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.runtime import Runtime
from plait.workflows.engine import Engine
from tests import workflow_helpers as h
from tests.imap_server import Dovecot
from tests.mailboxes import newsgroup_messages

pytestmark = pytest.mark.skipif(not Dovecot.available(), reason="dovecot is not installed (apt-get install "
                                                                  "dovecot-imapd; scripts/system-packages.sh)")

STEPS = """
steps:
  - id: line
    template: "{{ item.uid }} {{ item.subject }}"
  - sink: file
    with: {path: "mail/{{ item.message_id }}.md"}
  - sink: table
    with: {table: seen, columns: {uid: "{{ item.uid }}", message_id: "{{ item.message_id }}"}}
"""


@pytest.fixture
def imap() -> Iterator[Dovecot]:
    with Dovecot() as server:
        yield server


def _wf(tmp_path: Path, server: Dovecot, poll: float = 60) -> object:
    # The test's mail server runs on this machine: the workflow must allow it (see plait.security.ssrf).
    return h.workflow(tmp_path, f"name: imap\ntrigger: {server.trigger_yaml(poll_seconds=poll)}\n"
                                f"network: {{allow: [127.0.0.1]}}\n{STEPS}")


def test_imap_messages_are_read_by_uid_once(tmp_path: Path, fake_models: Runtime, imap: Dovecot) -> None:
    messages = newsgroup_messages(13)
    imap.append(messages[:10])
    wf = _wf(tmp_path, imap)
    first = Engine(wf, fake_models).run()  # type: ignore[arg-type]
    assert (first.added, first.done, first.failed) == (10, 10, 0)
    st = h.state(fake_models, "imap")
    cursor = st.cursor("imap")
    assert cursor is not None and cursor["last_uid"] == 10 and cursor["uidvalidity"] > 0
    item = st.items()[3]
    assert item.key == "imap:ng-0003@plait.test" and item.data["uid"] == 4 and item.data["body"]
    imap.append(messages[10:])
    second = Engine(wf, fake_models).run()  # type: ignore[arg-type]
    assert (second.added, second.done) == (3, 3)
    # Fetched with BODY.PEEK: the messages are still unread for the person's mail client.
    conn = imap.client()
    conn.select("INBOX")
    assert conn.search(None, "UNSEEN")[1][0].split() == [str(i).encode() for i in range(1, 14)]
    conn.logout()


def test_new_mail_arriving_while_the_workflow_runs_is_processed_exactly_once(tmp_path: Path, fake_models: Runtime,
                                                                           imap: Dovecot) -> None:
    messages = newsgroup_messages(60)
    imap.append(messages[:20])
    engine = Engine(_wf(tmp_path, imap, poll=0.1), fake_models)  # type: ignore[arg-type]
    thread = threading.Thread(target=lambda: engine.run(watch=True))
    thread.start()
    st = h.state(fake_models, "imap")
    try:
        for start in range(20, 60, 10):  # mail keeps arriving while earlier mail is processed
            imap.append(messages[start:start + 10])
            time.sleep(0.05)
        deadline = time.monotonic() + 60
        while st.counts()["done"] < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        engine.stop()
        thread.join(30)
    assert st.counts() == {"pending": 0, "running": 0, "done": 60, "failed": 0, "skipped": 0}
    assert st.effect_counts() == {"file": 60, "table": 60}
    files = list((fake_models.settings.home / "output" / "imap" / "mail").iterdir())
    assert sorted(f.name for f in files) == sorted(f"ng-{i:04d}@plait.test.md" for i in range(60))
    from tests.homes import open_db

    rows = open_db(fake_models.settings.home / "workflows" / "tables.db").execute(
        "SELECT COUNT(*), COUNT(DISTINCT message_id) FROM seen").fetchone()
    assert rows == (60, 60)


def test_a_server_that_is_down_or_refuses_the_login_is_a_clear_trigger_error(tmp_path: Path, fake_models: Runtime,
                                                                           imap: Dovecot) -> None:
    wf = _wf(tmp_path, imap)
    os.environ["PLAIT_TEST_IMAP_PASSWORD"] = "wrong"
    refused = Engine(wf, fake_models).run()  # type: ignore[arg-type]
    assert refused.trigger_error and refused.trigger_error.startswith("IMAP login failed for me at 127.0.0.1")
    imap.stop()
    os.environ["PLAIT_TEST_IMAP_PASSWORD"] = "plait-test-secret"
    down = Engine(wf, fake_models).run()  # type: ignore[arg-type]
    assert down.trigger_error and down.trigger_error.startswith(f"cannot reach IMAP server 127.0.0.1:{imap.port}")
    assert down.status == "failed"
