"""The failures people hit with a local database: a damaged plait.db, one from a newer plait, a read-only
home, a full disk while indexing or running a workflow. Each is one line on stderr, exit code 3, and
nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plait.runtime import Runtime
from tests.cli import plait
from tests.homes import open_db

REPO = Path(__file__).resolve().parents[2]


def _one_line_error(code: int, err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert code == 3 and len(lines) == 1 and lines[0].startswith("plait: error: "), (code, err)
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_a_file_that_is_not_a_database_is_refused_untouched(plait_home: Path, capsys: pytest.CaptureFixture[str],
                                                             ) -> None:
    plait_home.mkdir()
    junk = os.urandom(40_000)
    (plait_home / "plait.db").write_bytes(junk)
    code, _, err = plait(capsys, "models", "list")
    _one_line_error(code, err, "damaged", "plait doctor", "plait restore")
    assert (plait_home / "plait.db").read_bytes() == junk


def test_damaged_pages_are_one_line_with_exit_3(fake_models: Runtime, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from plait.index import open_index

    notes = tmp_path / "notes"
    notes.mkdir()
    for i in range(60):
        (notes / f"n{i}.txt").write_text(f"Note {i} about the budget meeting. " * 40)
    open_index(fake_models).add([notes])
    db = fake_models.store.path
    fake_models.close()  # checkpoints the WAL into the file
    page = 4096
    raw = bytearray(db.read_bytes())
    for start in range(page * 8, len(raw) - page, page * 2):  # every other page after the schema's
        raw[start + 100:start + page] = os.urandom(page - 100)
    db.write_bytes(bytes(raw))
    code, _, err = plait(capsys, "index", "status")
    _one_line_error(code, err, "damaged")


def test_a_database_from_a_newer_plait_is_refused_before_anything_is_written(
        runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    with runtime.store.transaction() as conn:
        conn.execute("INSERT INTO _migrations VALUES ('m999_from_the_future', datetime('now'))")
        conn.execute("DELETE FROM _migrations WHERE name = 'm004_adapt_runs'")  # as if this one were new here
        conn.execute("DROP TABLE adapt_run_metrics")
        conn.execute("DROP TABLE adapt_runs")
    path = runtime.store.path
    runtime.close()
    code, _, err = plait(capsys, "models", "list")
    _one_line_error(code, err, "newer plait", "m999_from_the_future", "upgrade plait")
    conn = open_db(path)
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'adapt_runs'").fetchall()  # not migrated
    conn.close()


def _as_unprivileged(command: list[str]) -> list[str] | None:
    """Run as a user who cannot write files owned by uid 12345 (root in a user namespace cannot either)."""
    if os.geteuid() != 0:
        return command
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-r", "true"]).returncode != 0:
        return None
    return ["unshare", "-r", *command]


def test_a_read_only_home_is_one_line_with_exit_3(tmp_path: Path) -> None:
    home = tmp_path / "home"
    Runtime(__import__("plait.settings", fromlist=["load_settings"]).load_settings(home=home)).close()
    for path in [home, *home.iterdir()]:
        os.chown(path, 12345, 12345)
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    before = {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()}
    command = _as_unprivileged([sys.executable, "-c", "import sys; sys.argv[0] = 'plait'; "
                                "from plait.cli.main import run; run(sys.argv[1:])", "keys", "create", "laptop"])
    if command is None:
        pytest.skip("user namespaces are not available here")
    env = {**os.environ, "PLAIT_HOME": str(home), "PYTHONPATH": str(REPO / "src")}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    _one_line_error(done.returncode, done.stderr, "cannot write", "writable")
    assert {p.name: p.read_bytes() for p in home.iterdir() if p.is_file()} == before


NOTES_WORKFLOW = """
name: notes
trigger: {{type: folder, path: "{inbox}"}}
steps:
  - id: note
    sink: file
    with: {{path: "notes/{{{{ key_slug }}}}.md", content: "{{{{ 'x' * 120000 }}}}END\\n"}}
"""


def test_a_full_disk_while_indexing_and_running_a_workflow(tmp_path: Path) -> None:
    notes, inbox = tmp_path / "notes", tmp_path / "inbox"
    notes.mkdir()
    inbox.mkdir()
    for i in range(400):
        (notes / f"note-{i:03}.txt").write_text(" ".join(f"Note {i} line {j} on the quarterly budget."
                                                         for j in range(60)))
    for i in range(40):
        (inbox / f"mail-{i:02}.txt").write_text(f"message {i}")
    (tmp_path / "notes.yml").write_text(NOTES_WORKFLOW.format(inbox=inbox))
    if os.geteuid() != 0 or shutil.which("unshare") is None or \
            subprocess.run(["unshare", "-rm", "true"]).returncode != 0:
        pytest.skip("user namespaces are not available here")
    done = subprocess.run(["unshare", "-rm", sys.executable, "-m", "tests.disk_full", str(tmp_path / "mnt"),
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'src'}"})
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    # Indexing stopped with one line and exit 3; what was committed is whole.
    full = out["index_full"]
    assert full["code"] == 3 and len(full["stderr"]) == 1 and "is full" in full["stderr"][0], full
    state = out["index_after_full"]
    assert state["integrity"] == "ok" and state["broken_documents"] == 0 and state["indexed_without_documents"] == 0
    assert state["chunks"] == state["vectors"] == state["fts"] and state["files"].get("indexed", 0) < 400
    again = out["index_after_again"]
    assert out["index_again"]["code"] == 0, out["index_again"]
    assert again["files"] == {"indexed": 400} and again["broken_documents"] == 0
    assert again["chunks"] == again["vectors"] == again["fts"] and len(set(again["texts"])) == len(again["texts"])

    # The workflow stopped at the first full write, with one line and exit 3: no item failed for it, no
    # partial note; once there is room, every item is done once.
    run = out["run_full"]
    assert run["code"] == 3 and len(run["stderr"]) == 1 and "is full" in run["stderr"][0], run
    after = out["run_after_full"]
    assert "failed" not in after["items"] and after["files"] == after["complete_files"] < 40
    assert not after["temporary_files"]
    final = out["run_after_again"]
    assert out["run_again"]["code"] == 0, out["run_again"]
    assert final["items"] == {"done": 40} and final["ledger"] == 40
    assert final["files"] == final["complete_files"] == 40 and not final["temporary_files"]
