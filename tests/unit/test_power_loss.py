"""A power cut in the middle of a workflow run, simulated by losing the tail of the WAL that SQLite had not
synced, then a restart: every external effect happens once, except at most the one in flight.

SQLite in WAL mode syncs the WAL at each COMMIT made with ``synchronous = FULL`` (and at checkpoints, turned
off here so the WAL only grows); with ``NORMAL`` a commit waits for the next checkpoint. The test records the
WAL's size after each synced commit, as SQLite itself reports the setting at that COMMIT, and cuts the WAL to
the last such size at the moment a webhook POST arrives: what a power cut at that instant would leave. The
control run, where the ledger is not written durably, shows the cut bites (many POSTs sent again).
"""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from plait.runtime import Runtime
from plait.settings import load_settings
from plait.store import Store
from plait.workflows.engine import Engine
from plait.workflows.loader import parse_workflow
from tests.workflow_processes import Receiver

SYNC_FULL = 2


class _Synced:
    """The WAL's size after the last commit SQLite synced."""

    wal_bytes = 0


def _recording(base: type[sqlite3.Connection]) -> type[sqlite3.Connection]:
    """A connection class (the sqlite3 module's, or SQLCipher's for an encrypted home) that notes the WAL's
    size after each synced commit."""

    class RecordingConnection(base):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            super().execute("PRAGMA wal_autocheckpoint = 0")  # the WAL keeps every commit: the cut decides

        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            if sql.strip().upper() != "COMMIT":
                return super().execute(sql, *args)
            mode = super().execute("PRAGMA synchronous").fetchone()[0]
            cursor = super().execute(sql, *args)
            if mode >= SYNC_FULL:
                database = super().execute("PRAGMA database_list").fetchone()[2]
                _Synced.wal_bytes = Path(database + "-wal").stat().st_size
            return cursor

    return RecordingConnection


def _record_commits(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.security.sqlcipher import sqlcipher

    for module in (sqlite3, sqlcipher()):
        factory, original = _recording(module.Connection), module.connect
        monkeypatch.setattr(module, "connect", lambda *a, _f=factory, _c=original, **kw: _c(*a, factory=_f, **kw))


def _power_cut(home: Path, crashed: Path, synced: int) -> None:
    """Copy the home as a power cut would leave it: the database, its WAL cut to what was synced, and the
    output files (written with fsync, then renamed and the folder synced)."""
    crashed.mkdir()
    shutil.copy2(home / "plait.db", crashed / "plait.db")
    shutil.copy2(home / "security.json", crashed / "security.json")  # the key file, written once at creation
    wal = (home / "plait.db-wal").read_bytes()
    (crashed / "plait.db-wal").write_bytes(wal[:synced])
    if (home / "output").exists():
        shutil.copytree(home / "output", crashed / "output")


WORKFLOW = """
name: hooks
trigger: {{type: manual}}
network: {{allow: [127.0.0.1]}}
steps:
  - id: note
    sink: file
    with: {{path: "notes/{{{{ key }}}}.md", content: "{{{{ item.text }}}}"}}
  - id: hook
    sink: webhook
    with: {{url: "{url}", json: {{key: "{{{{ key }}}}"}}}}
"""


@pytest.mark.parametrize("durable_ledger", [True, False])
def test_a_power_cut_repeats_at_most_the_effect_in_flight(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          fake_models: Runtime, durable_ledger: bool) -> None:
    _record_commits(monkeypatch)
    if not durable_ledger:  # the control: every commit as the default synchronous = NORMAL
        original_transaction = Store.transaction
        monkeypatch.setattr(Store, "transaction", lambda self, durable=False: original_transaction(self))
    _Synced.wal_bytes = 0
    home = tmp_path / "home"
    n, cut_at = 40, random.Random(17).randint(8, 32)
    cut: dict[str, int] = {}
    receiver = Receiver()
    rt = Runtime(load_settings(home=home, embed_model="fake-embed", chat_model="fake-chat"))
    try:
        original_post = receiver.server.RequestHandlerClass.do_POST

        def post(handler: Any) -> None:
            if len(receiver.keys) + 1 == cut_at:  # this POST lands; plait waits for the answer, writes nothing
                cut["synced"] = _Synced.wal_bytes
                _power_cut(home, tmp_path / "crashed", _Synced.wal_bytes)
            original_post(handler)

        receiver.server.RequestHandlerClass.do_POST = post  # type: ignore[method-assign]
        wf = parse_workflow(WORKFLOW.format(url=receiver.url), source=tmp_path / "hooks.yml")
        engine = Engine(wf, rt)
        for i in range(n):
            engine.submit({"text": f"item {i}"}, key=f"k{i:02d}")
        # A checkpoint (SQLite makes one every 1000 pages) puts the items on disk; TRUNCATE empties the WAL,
        # so its size is where the next commit ends.
        rt.store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _Synced.wal_bytes = 0
        assert engine.run().done == n
        rt.close()
        assert cut["synced"] > 0 or not durable_ledger
        # Restart on what the power cut left; the process that held the workflow's lock died with the power.
        monkeypatch.setattr("plait.workflows.state.os.getpid", lambda: 999_999_999)
        monkeypatch.setattr("plait.workflows.state.pid_alive", lambda pid: False)
        after = Runtime(load_settings(home=tmp_path / "crashed", embed_model="fake-embed", chat_model="fake-chat"))
        try:
            assert after.store.query("PRAGMA integrity_check")[0][0] == "ok"
            summary = Engine(wf, after).run()
            items = dict(after.store.query("SELECT state, count(*) FROM workflow_items GROUP BY state"))
            ledger = after.store.query("SELECT count(*) FROM workflow_effects WHERE step = 'hook'")[0][0]
        finally:
            after.close()
    finally:
        receiver.close()
    # The first run went on after the simulated cut; in the world the cut left, only its first POSTs happened.
    keys = receiver.keys[:cut_at] + receiver.keys[n:]
    repeated = len(keys) - len(set(keys))
    assert len(set(keys)) == n
    notes = list((tmp_path / "crashed" / "output" / "hooks" / "notes").glob("*.md"))
    assert len(notes) == n
    if durable_ledger:
        assert items == {"done": n} and ledger == n and summary.failed == 0
        assert repeated <= 1, f"{repeated} POSTs sent again after a power cut at POST {cut_at}"
    else:
        # Without a synced ledger the cut erases the record of every POST since the last checkpoint: all of
        # them are sent again.
        assert repeated == cut_at
