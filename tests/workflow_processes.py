"""Running `plait run` in a separate process, killing it with SIGKILL mid-run, and counting every sink's
side effects afterwards: shared by the kill tests and bench/workflow.py."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.homes import open_db, read_text

REPO = Path(__file__).resolve().parents[1]

# The child runs the real CLI; with fakes=True it first registers the fake model backend (tests/fakes.py).
BOOT = ("import sys; sys.argv[0] = 'plait'; {fakes}from plait.cli.main import run; run(sys.argv[1:])")


def start_plait(home: Path, args: list[str], *, fakes: bool = False, env: dict[str, str] | None = None,
                ) -> subprocess.Popen[bytes]:
    child_env = {**os.environ, "PLAIT_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                 "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {})}
    if fakes:
        child_env.update(PLAIT_CHAT_MODEL="fake-chat", PLAIT_EMBED_MODEL="fake-embed")
    code = BOOT.format(fakes="import tests.fakes; " if fakes else "")
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=child_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def item_counts(home: Path, workflow: str) -> dict[str, int]:
    db = home / "plait.db"
    if not db.exists():
        return {}
    try:
        conn = open_db(db, readonly=True)
        try:
            rows = conn.execute("SELECT state, COUNT(*) FROM workflow_items WHERE workflow = ? GROUP BY state",
                                (workflow,)).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    return dict(rows)


def kill_when_done(proc: subprocess.Popen[bytes], home: Path, workflow: str, done: int,
                   timeout: float = 300, delay: float = 0.0) -> dict[str, int]:
    """SIGKILL ``proc`` as soon as ``done`` items are done (and ``delay`` seconds more, so the kill lands
    somewhere inside the next item's steps); returns the item counts at that moment."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = item_counts(home, workflow)
        if counts.get("done", 0) >= done:
            time.sleep(delay)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            return item_counts(home, workflow)
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"plait exited ({proc.returncode}) before {done} items were done: "
                                 f"{err.decode()[-2000:]}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"fewer than {done} items done after {timeout}s: {item_counts(home, workflow)}")


class Receiver:
    """A local HTTP server for webhook sinks: records every POST's Idempotency-Key.

    ``stall_on=k``: the k-th POST is recorded (delivered) but not answered until :meth:`release`, so the
    sender can be killed while it waits; ``stalled`` is set when that POST arrives."""

    def __init__(self, delay: float = 0.0, stall_on: int | None = None) -> None:
        self.keys: list[str] = []
        self.lock = threading.Lock()
        self.stalled = threading.Event()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server interface
                length = int(self.headers.get("content-length", 0))
                self.rfile.read(length)
                if delay:
                    time.sleep(delay)
                with receiver.lock:
                    receiver.keys.append(self.headers.get("idempotency-key", ""))
                    stall = len(receiver.keys) == stall_on
                if stall:
                    receiver.stalled.set()
                    receiver._release.wait(600)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


def side_effects(home: Path, workflow: str, receiver: Receiver | None = None) -> dict[str, Any]:
    """Every sink's side effects, counted where they landed (files, rows, digest lines, POSTs), and the ledger."""
    out = home / "output" / workflow
    notes = [p for p in (out / "notes").rglob("*.md")] if (out / "notes").exists() else []
    result: dict[str, Any] = {"note_files": len(notes), "note_files_distinct": len({p.name for p in notes})}
    tables = home / "workflows" / "tables.db"
    if tables.exists():
        conn = open_db(tables)
        try:
            total, distinct = conn.execute("SELECT COUNT(*), COUNT(DISTINCT message_id) FROM triage").fetchone()
        finally:
            conn.close()
        result.update(table_rows=total, table_rows_distinct=distinct)
    digests = list((out / "digest").glob("*.md")) if (out / "digest").exists() else []
    lines = [line for d in digests for line in read_text(d).splitlines() if line.startswith("- **")]
    result.update(digest_entries=len(lines), digest_files=len(digests))
    drafts = list((out / "drafts").glob("*.eml")) if (out / "drafts").exists() else []
    result["mail_drafts"] = len(drafts)
    if receiver is not None:
        counts = Counter(receiver.keys)
        result.update(webhook_posts=len(receiver.keys), webhook_distinct_keys=len(counts),
                      webhook_repeated_keys=sum(1 for c in counts.values() if c > 1))
    conn = open_db(home / "plait.db")
    try:
        result["ledger"] = dict(conn.execute("SELECT step, COUNT(*) FROM workflow_effects WHERE workflow = ? "
                                             "GROUP BY step", (workflow,)).fetchall())
        result["items"] = dict(conn.execute("SELECT state, COUNT(*) FROM workflow_items WHERE workflow = ? "
                                            "GROUP BY state", (workflow,)).fetchall())
    finally:
        conn.close()
    return result


TRIAGE = """
name: {name}
description: inbox triage over a Maildir, with one sink of each durable kind, for kill -9 tests
trigger: {{type: maildir, path: "{maildir}"}}
network: {{allow: ["127.0.0.1"]}}  # the webhook receiver of the test runs on this machine
batch_size: {batch}
vars:
  labels:
    religion: religion, atheism, god, the bible and morality
    space: space, astronomy, rockets, orbits and NASA
steps:
  - id: label
    task: classify
    with:
      texts: "{{{{ item.subject }}}}\\n\\n{{{{ item.body | words(300) }}}}"
      labels: "{{{{ vars.labels }}}}"
  - id: gist
    task: summarize
    with: {{text: "{{{{ item.body | words(1500) }}}}", style: one-line}}
  - id: note
    sink: file
    with:
      path: "notes/{{{{ label.label }}}}/{{{{ item.message_id }}}}.md"
      content: "# {{{{ item.subject }}}}\\n\\n{{{{ label.label }}}}: {{{{ gist.text }}}}\\n"
  - id: row
    sink: table
    with:
      table: triage
      columns: {{message_id: "{{{{ item.message_id }}}}", label: "{{{{ label.label }}}}"}}
  - id: digest
    sink: digest
    with:
      path: "digest/{{period}}"
      period: all
      heading: "{{{{ item.subject }}}}"
      text: "{{{{ gist.text }}}}"
      group: "{{{{ label.label }}}}"
      chart: false
  - id: draft
    sink: mail
    with:
      folder: drafts
      to: "{{{{ item.sender }}}}"
      subject: "Re: {{{{ item.subject }}}}"
      body: "Filed under {{{{ label.label }}}}."
  - id: hook
    sink: webhook
    with:
      url: "{hook}"
      json: {{message_id: "{{{{ item.message_id }}}}", label: "{{{{ label.label }}}}"}}
"""


def triage_workflow(path: Path, *, name: str, maildir: Path, hook: str, batch: int = 16) -> Path:
    path.write_text(TRIAGE.format(name=name, maildir=maildir, hook=hook, batch=batch), encoding="utf-8")
    return path


def json_summary(stdout: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(stdout.decode())
    return value
