"""Sinks: files, moves, copies, tags, digests with charts, .ics, tables, webhook POSTs, mail drafts and SMTP,
the index; each acts once per item, and acting again after a lost ledger write changes nothing."""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import socketserver
import sqlite3
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from plait.runtime import Runtime
from plait.workflows.engine import Engine
from plait.workflows.sinks.files import read_tags
from tests import workflow_helpers as h
from tests.homes import read_output_bytes, read_text


@pytest.fixture(autouse=True)
def _reset() -> None:
    h.reset()


def _run(tmp_path: Path, rt: Runtime, steps: str, items: list[dict], *, name: str = "s", extra: str = "",
         transport: httpx.BaseTransport | None = None) -> object:
    wf = h.workflow(tmp_path, f"name: {name}\ntrigger: {{type: manual}}\nretry: {{attempts: 2, backoff_seconds: 0}}\n"
                              f"{extra}steps:\n{steps}")
    engine = Engine(wf, rt, http_transport=transport)
    for i, item in enumerate(items):
        engine.submit(item, key=f"k{i}")
    return engine.run()


def _lose_ledger(rt: Runtime, name: str, step: str) -> None:
    """What a kill between a sink's effect and its ledger write leaves: the effect done, not recorded."""
    with rt.store.transaction() as conn:
        conn.execute("DELETE FROM workflow_effects WHERE workflow = ? AND step = ?", (name, step))
        conn.execute("DELETE FROM workflow_steps WHERE step = ? AND item_id IN (SELECT id FROM workflow_items "
                     "WHERE workflow = ?)", (step, name))
        conn.execute("UPDATE workflow_items SET state = 'pending' WHERE workflow = ?", (name,))


def _out(rt: Runtime, name: str = "s") -> Path:
    return rt.settings.home / "output" / name


def test_file_sink_writes_markdown_json_and_html(tmp_path: Path, fake_models: Runtime) -> None:
    _run(tmp_path, fake_models, """
  - id: shout
    template: "{{ item.text | upper }}"
  - sink: file
    id: md
    with: {path: "{{ key }}.md"}
  - sink: file
    id: js
    with: {path: "{{ key }}.json", data: "{{ {'text': item.text, 'shout': shout} }}"}
  - sink: file
    id: web
    with: {path: "{{ key }}.html"}
""", [{"text": "a <b> c", "subject": "Hello"}])
    out = _out(fake_models)
    assert read_text(out / "k0.md").startswith("# Hello\n") and "A <B> C" in read_text(out / "k0.md")
    assert json.loads(read_text(out / "k0.json")) == {"text": "a <b> c", "shout": "A <B> C"}
    assert "<h1>Hello</h1>" in read_text(out / "k0.html") and "A &lt;B&gt; C" in read_text(out / "k0.html")


def test_a_path_may_not_leave_the_output_folder(tmp_path: Path, fake_models: Runtime) -> None:
    summary = _run(tmp_path, fake_models, '  - sink: file\n    with: {path: "../../{{ key }}.md"}\n', [{"text": "x"}])
    assert summary.failed == 1 and "leaves the output folder" in summary.errors[0]  # type: ignore[attr-defined]


def test_move_copy_and_tag_act_once_even_when_the_ledger_write_was_lost(tmp_path: Path,
                                                                         fake_models: Runtime) -> None:
    src = tmp_path / "in"
    src.mkdir()
    items = []
    for n in range(3):
        (src / f"f{n}.txt").write_text(f"file {n}")
        items.append({"path": str(src / f"f{n}.txt")})
    # Items given by hand name files outside any trigger folder: the author lists where they may be.
    steps = f"""
  - sink: copy
    with: {{to: "{tmp_path}/backup", within: ["{src}"]}}
  - sink: tag
    with: {{tags: [work, "{{{{ key }}}}"], within: ["{src}"]}}
  - sink: move
    with: {{to: "{tmp_path}/done", within: ["{src}"]}}
"""
    assert _run(tmp_path, fake_models, steps, items).done == 3  # type: ignore[attr-defined]
    _lose_ledger(fake_models, "s", "move")  # killed after moving, before recording it
    again = _run(tmp_path, fake_models, steps, [])
    assert again.done == 3 and again.failed == 0  # type: ignore[attr-defined]
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == ["f0.txt", "f1.txt", "f2.txt"]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["f0.txt", "f1.txt", "f2.txt"]
    assert not list(src.iterdir())
    assert read_tags(tmp_path / "done" / "f1.txt") == ["k1", "work"]
    assert h.state(fake_models, "s").effect_counts() == {"copy": 3, "tag": 3, "move": 3}
    # Tagging again (killed after tagging, before recording it) adds nothing.
    tag_only = (f'  - sink: tag\n    with: {{tags: [work, "{{{{ key }}}}"], path: "{{{{ item.path }}}}", '
                f'within: ["{tmp_path}/done"]}}\n')
    moved = [{"path": str(tmp_path / "done" / f"f{n}.txt")} for n in range(3)]
    _run(tmp_path, fake_models, tag_only, moved, name="t2")
    _lose_ledger(fake_models, "t2", "tag")
    _run(tmp_path, fake_models, tag_only, [], name="t2")
    assert read_tags(tmp_path / "done" / "f1.txt") == ["k1", "work"]


def test_copies_and_moves_into_an_encrypted_home_are_sealed_and_leave_known_temporaries(
        tmp_path: Path, fake_models: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.security.keys import keys_for
    from plait.security.storage import sealed
    from plait.workflows.sinks import TEMPORARY

    src = tmp_path / "in"
    src.mkdir()
    for n in range(2):
        (src / f"f{n}.txt").write_text(f"file {n}")
    out, backup = _out(fake_models), tmp_path / "backup"
    renamed: list[str] = []  # the temporary files copies went through: what a crash would leave
    real_replace = os.replace

    def replace(a: str | Path, b: str | Path) -> None:
        if Path(b).parent in (out / "kept", out / "done", backup):
            renamed.append(Path(a).name)
        real_replace(a, b)

    monkeypatch.setattr(os, "replace", replace)
    steps = f"""
  - sink: copy
    with: {{to: kept, within: ["{src}"]}}
  - sink: copy
    with: {{to: "{backup}", within: ["{src}"]}}
  - sink: move
    with: {{to: done, within: ["{src}"]}}
"""
    assert _run(tmp_path, fake_models, steps, [{"path": str(src / f"f{n}.txt")} for n in range(2)]).done == 2  # type: ignore[attr-defined]
    assert keys_for(out) is not None  # the test home is encrypted, as homes are by default
    for folder in (out / "kept", out / "done"):
        assert all(sealed(p) for p in folder.iterdir()) and read_text(folder / "f1.txt") == "file 1"
    assert not sealed(backup / "f1.txt") and (backup / "f1.txt").read_text() == "file 1"  # outside: as it is
    assert not list(src.iterdir())
    assert len(renamed) == 6 and all(TEMPORARY.match(name) for name in renamed), renamed


def test_move_into_a_maildir_folder(tmp_path: Path, fake_models: Runtime) -> None:
    from tests.mailboxes import newsgroup_messages, write_maildir

    box = tmp_path / "Maildir"
    write_maildir(box, newsgroup_messages(2))
    wf = h.workflow(tmp_path, f"""
name: mv
trigger: {{type: maildir, path: {box}}}
steps:
  - sink: move
    with: {{to: "{tmp_path}/Archive", maildir: true}}
""")
    assert Engine(wf, fake_models).run().done == 2
    assert len(list((tmp_path / "Archive" / "cur").iterdir())) == 2 and not list((box / "new").iterdir())
    import mailbox

    assert len(mailbox.Maildir(str(tmp_path / "Archive"), create=False)) == 2


def test_digest_groups_entries_by_period_with_a_chart(tmp_path: Path, fake_models: Runtime) -> None:
    base = datetime(2024, 5, 2, 6, 30, tzinfo=UTC)
    items = [{"subject": f"mail {i}", "label": "work" if i % 3 else "news", "score": i / 10,
              "date": (base + timedelta(hours=i)).isoformat()} for i in range(5)]
    steps = """
  - sink: digest
    with:
      path: "digest/{period}"
      timezone: UTC
      day_starts: "07:00"
      title: "Digest {period}"
      time: "{{ item.date }}"
      heading: "{{ item.subject }}"
      text: "score {{ item.score }}"
      group: "{{ item.label }}"
"""
    assert _run(tmp_path, fake_models, steps, items).done == 5  # type: ignore[attr-defined]
    digest = _out(fake_models) / "digest"
    # 06:30 belongs to the day that started at 07:00 the day before.
    assert sorted(p.name for p in digest.iterdir()) == ["2024-05-01.html", "2024-05-01.md", "2024-05-01.png",
                                                        "2024-05-02.html", "2024-05-02.md", "2024-05-02.png"]
    md = read_text(digest / "2024-05-02.md")
    assert md.startswith("# Digest 2024-05-02\n\n4 item(s); work: 3, news: 1")
    assert "![chart](2024-05-02.png)" in md and "## work (3)" in md and "- **mail 4** · 2024-05-06 10:30" not in md
    assert read_output_bytes(digest / "2024-05-02.png")[:4] == b"\x89PNG"
    assert "data:image/png;base64," in read_text(digest / "2024-05-02.html")
    _lose_ledger(fake_models, "s", "digest")
    _run(tmp_path, fake_models, steps, [])
    assert read_text(digest / "2024-05-02.md") == md  # the same four entries, not eight


def test_a_digest_inside_a_map_keeps_an_entry_per_element(tmp_path: Path, fake_models: Runtime) -> None:
    steps = """
  - id: each
    map: "item.tasks"
    as: task
    steps:
      - sink: digest
        with: {path: "todo", period: all, heading: "{{ item.who }}: {{ task }}", chart: false}
"""
    items = [{"who": "Ann", "tasks": ["call the bank", "book the train"]}, {"who": "Bo", "tasks": ["pay rent"]}]
    assert _run(tmp_path, fake_models, steps, items).done == 2  # type: ignore[attr-defined]
    md = read_text(_out(fake_models) / "todo.md")
    assert all(f"**{line}**" in md for line in ("Ann: call the bank", "Ann: book the train", "Bo: pay rent"))
    _lose_ledger(fake_models, "s", "each[0].digest")
    _run(tmp_path, fake_models, steps, [])
    assert read_text(_out(fake_models) / "todo.md") == md  # applied again: the same three, not four


def test_digest_links_are_only_web_or_relative_links(tmp_path: Path, fake_models: Runtime) -> None:
    items = [{"subject": "Evil", "url": " javascript:alert(1)"}, {"subject": "Data", "url": "data:text/html,x"},
             {"subject": "Good", "url": "https://example.org/a b) [x](javascript:alert(2)"},
             {"subject": "Local", "url": "notes/today.md"}]
    steps = """
  - sink: digest
    with: {path: "links", period: all, heading: "{{ item.subject }}", link: "{{ item.url }}", chart: false}
"""
    assert _run(tmp_path, fake_models, steps, items).done == 4  # type: ignore[attr-defined]
    md, page = read_text(_out(fake_models) / "links.md"), read_text(_out(fake_models) / "links.html")
    assert "- **Evil**" in md and "- **Data**" in md and "alert(1)" not in md + page and "data:" not in md + page
    # A web link keeps its text, but cannot end the Markdown link early and start another.
    assert "[Good](https://example.org/a%20b%29%20[x]%28javascript:alert%282%29)" in md
    assert "href='https://example.org/a%20b%29" in page and "href='javascript" not in page
    assert "[Local](notes/today.md)" in md and "<a href='notes/today.md'>Local</a>" in page


def test_ics_sink_gathers_events_with_stable_uids(tmp_path: Path, fake_models: Runtime) -> None:
    from plait.calendar import read_calendar

    steps = """
  - sink: ics
    with:
      path: proposals.ics
      summary: "Meet {{ item.who }}"
      start: "{{ item.start }}"
      duration_minutes: 45
"""
    _run(tmp_path, fake_models, steps, [{"who": "Ann", "start": "2024-05-06T10:00:00+00:00"},
                                        {"who": "Bo", "start": "2024-05-07T15:30:00+02:00"}])
    ics = _out(fake_models) / "proposals.ics"
    start, end = datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 6, 1, tzinfo=UTC)
    events = read_calendar(ics, start, end, tz=UTC).events
    assert [(e.summary, e.start.isoformat(), e.end.isoformat()) for e in events] == [
        ("Meet Ann", "2024-05-06T10:00:00+00:00", "2024-05-06T10:45:00+00:00"),
        ("Meet Bo", "2024-05-07T13:30:00+00:00", "2024-05-07T14:15:00+00:00")]
    uids = [e.uid for e in events]
    _lose_ledger(fake_models, "s", "ics")
    _run(tmp_path, fake_models, steps, [])
    assert [e.uid for e in read_calendar(ics, start, end, tz=UTC).events] == uids


def test_table_sink_adds_columns_when_the_workflow_grows(tmp_path: Path, fake_models: Runtime) -> None:
    db = tmp_path / "t.db"
    sink = '  - sink: table\n    with: {table: log, database: "DB", columns: COLUMNS}\n'.replace("DB", str(db))
    _run(tmp_path, fake_models, sink.replace("COLUMNS", '{a: "{{ item.a }}"}'), [{"a": 1}])
    _run(tmp_path, fake_models, sink.replace("COLUMNS", '{a: "{{ item.a }}", b: "{{ item.b }}"}'),
         [{"a": 2, "b": [1, 2]}], name="s2")
    rows = sqlite3.connect(db).execute("SELECT _key, a, b FROM log ORDER BY a").fetchall()
    assert rows == [("s/k0/table", 1, None), ("s2/k0/table", 2, "[1, 2]")]


def test_webhook_posts_carry_an_idempotency_key_and_retry_server_errors(tmp_path: Path,
                                                                         fake_models: Runtime) -> None:
    seen: list[tuple[str, dict]] = []
    failures = {"k0": 1}

    def handler(request: httpx.Request) -> httpx.Response:
        key = request.headers["idempotency-key"]
        body = json.loads(request.content)
        item = key.split("/")[1]
        if failures.get(item):
            failures[item] -= 1
            return httpx.Response(503)
        if body["item"].get("bad"):
            return httpx.Response(400, text="rejected")
        seen.append((key, body))
        return httpx.Response(201)

    # hooks.test does not resolve (the transport is a fake): the workflow allows the name itself.
    summary = _run(tmp_path, fake_models, '  - sink: webhook\n    with: {url: "https://hooks.test/in"}\n',
                   [{"text": "a"}, {"text": "b", "bad": True}], transport=httpx.MockTransport(handler),
                   extra="network: {allow: [hooks.test]}\n")
    assert summary.done == 1 and summary.failed == 1  # type: ignore[attr-defined]
    assert seen[0][0] == "s/k0/webhook" and seen[0][1]["item"] == {"text": "a"}
    assert "answered 400: rejected" in summary.errors[0]  # type: ignore[attr-defined]


def test_mail_drafts_are_eml_files_with_a_stable_message_id(tmp_path: Path, fake_models: Runtime) -> None:
    steps = """
  - sink: mail
    with:
      folder: drafts
      to: "{{ item.sender }}"
      subject: "Re: {{ item.subject }}"
      in_reply_to: "{{ item.message_id }}"
      body: "Thanks, {{ item.sender.split('@')[0] }}!"
"""
    _run(tmp_path, fake_models, steps, [{"sender": "ann@example.org", "subject": "Lunch", "message_id": "m1@x"}])
    drafts = list((_out(fake_models) / "drafts").iterdir())
    assert len(drafts) == 1
    msg = email.message_from_bytes(read_output_bytes(drafts[0]), policy=email.policy.default)
    assert (msg["To"], msg["Subject"], msg["In-Reply-To"]) == ("ann@example.org", "Re: Lunch", "<m1@x>")
    assert msg.get_content().strip() == "Thanks, ann!"
    first_id = msg["Message-ID"]
    _lose_ledger(fake_models, "s", "mail")
    _run(tmp_path, fake_models, steps, [])
    again = list((_out(fake_models) / "drafts").iterdir())
    assert again == drafts
    assert email.message_from_bytes(read_output_bytes(again[0]), policy=email.policy.default)["Message-ID"] == first_id


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) to accept a message: the peer the mail sink talks to."""

    received: list[bytes] = []

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb in (b"EHLO", b"HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.received.append(data)
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[bytes]]]:
    _Smtp.received = []
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], _Smtp.received
    server.shutdown()
    server.server_close()


class _TlsServer(socketserver.ThreadingTCPServer):
    """The SMTP peer above behind implicit TLS (port 465 style), with a self-signed certificate."""

    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        return self.context.wrap_socket(conn, server_side=True), address


def test_smtp_over_ssl_checks_the_servers_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.security.tls import self_signed
    from plait.workflows.errors import StepError
    from plait.workflows.sinks.mail import MailSink, SmtpOptions

    cert = self_signed(tmp_path / "tls", ["127.0.0.1"])
    _Smtp.received = []
    server = _TlsServer(("127.0.0.1", 0), _Smtp)
    server.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.context.load_cert_chain(cert.cert, cert.key)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    msg = EmailMessage()
    msg["Subject"], msg["To"] = "Digest", "me@example.org"
    msg.set_content("hello")
    options = SmtpOptions(host="127.0.0.1", port=server.server_address[1], ssl=True, starttls=False, timeout=5)
    try:
        with pytest.raises(StepError, match="certificate is not trusted"):  # a certificate nobody vouches for
            MailSink._send(msg, options)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert))  # one the machine trusts
        MailSink._send(msg, options)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Smtp.received) == 1


def test_mail_sink_sends_over_smtp(tmp_path: Path, fake_models: Runtime, smtp_server: tuple[int, list[bytes]]) -> None:
    port, received = smtp_server
    summary = _run(tmp_path, fake_models, f"""
  - sink: mail
    with:
      smtp: {{host: 127.0.0.1, port: {port}, starttls: false}}
      to: [me@example.org]
      subject: "Digest"
      body: "{{{{ item.text }}}}"
""", [{"text": "hello over smtp"}], extra="network: {allow: [127.0.0.1]}\n")
    assert summary.done == 1  # type: ignore[attr-defined]
    msg = email.message_from_bytes(received[0], policy=email.policy.default)
    assert msg["Subject"] == "Digest" and "hello over smtp" in msg.get_content()


def test_index_sink_makes_item_text_searchable(tmp_path: Path, fake_models: Runtime) -> None:
    from plait.tasks.search import search

    _run(tmp_path, fake_models, """
  - sink: index
    with:
      text: "{{ item.body }}"
      title: "{{ item.subject }}"
      collection: mail
""", [{"subject": "Budget", "body": "The budget for the telescope project was approved on Monday."}])
    results = search("telescope budget", k=3, mode="keyword", runtime=fake_models)
    assert results.hits and "telescope" in results.hits[0].text
