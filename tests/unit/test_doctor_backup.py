"""`plait doctor` (checks and repairs), `plait models check`, and `plait backup`/`plait restore` taken while a
workflow and an ingestion are running."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from plait.index import open_index
from plait.runtime import Runtime
from plait.settings import load_settings
from plait.tasks.search import search
from plait.workflows.engine import Engine
from tests.cli import plait
from tests.fakes import fake_runtime

QUERIES = ["budget meeting in March", "the garden and the roses", "train tickets to Lyon", "note 17"]


def _notes(folder: Path, count: int, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    topics = ["the budget meeting in March", "the garden and the roses", "train tickets to Lyon", "a new laptop"]
    for i in range(start, start + count):
        (folder / f"note-{i:03}.md").write_text(
            f"# Note {i}\n\n" + " ".join(f"Note {i} is about {topics[(i + j) % 4]}, point {j}." for j in range(30)))
    return folder


def _results(rt: Runtime) -> list[object]:
    """Keyword hits exactly; vector hits by score (the fake embedder makes ties, whose order may differ)."""
    out: list[object] = []
    for q in QUERIES:
        out.append([(hit.path, hit.text) for hit in search(q, k=5, mode="keyword", runtime=rt).hits])
        out.append([round(hit.score, 5) for hit in search(q, k=5, mode="vector", runtime=rt).hits])
    return out


def test_doctor_rebuilds_the_keyword_index_and_vectors_from_the_rows(fake_models: Runtime, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    index = open_index(fake_models)
    index.add([_notes(tmp_path / "notes", 40)])
    before = _results(fake_models)
    store = fake_models.store
    with store.transaction() as conn:  # the keyword index loses entries, some chunks lose their vectors
        for row in conn.execute("SELECT id, context, text FROM index_chunks WHERE id % 3 = 0").fetchall():
            conn.execute("INSERT INTO index_fts (index_fts, rowid, context, text) VALUES ('delete', ?, ?, ?)",
                         tuple(row))
        lost = conn.execute("DELETE FROM index_vectors WHERE chunk_id % 4 = 0").rowcount
    assert lost > 0
    shutil.rmtree(fake_models.settings.home / "index" / "vectors")  # and the vector index file is gone
    vectors = store.query("SELECT chunk_id, vector FROM index_vectors")

    code, out, _ = plait(capsys, "doctor", "--check-only", "--json")
    checks = {c["name"]: c for c in map(json.loads, out.splitlines())}
    assert code == 1 and checks["keyword index"]["status"] == "fail" and checks["vectors"]["status"] == "fail"

    code, out, _ = plait(capsys, "doctor", "--json")
    checks = {c["name"]: c for c in map(json.loads, out.splitlines())}
    assert code == 0, out
    assert checks["keyword index"]["status"] == checks["vectors"]["status"] == "repaired"
    assert f"{lost:,} chunk(s) had no vector" in checks["vectors"]["detail"]
    code, out, _ = plait(capsys, "doctor", "--json")
    assert code == 0 and all(c["status"] == "ok" for c in map(json.loads, out.splitlines())), out
    # The vectors embedded again are the ones ingestion made; search finds what it found before.
    restored = dict(store.query("SELECT chunk_id, vector FROM index_vectors"))
    assert all(restored[k] == v for k, v in vectors)
    fresh = fake_runtime(fake_models.settings.home)
    try:
        assert _results(fresh) == before
    finally:
        fresh.close()


def test_doctor_releases_locks_of_dead_processes(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    with fake_models.store.transaction() as conn:
        conn.execute("INSERT INTO workflow_runs (id, workflow, kind, status, pid, host, started_at, heartbeat_at) "
                     "VALUES (7, 'inbox', 'run', 'running', 999999999, 'here', 0, 0)")
        conn.execute("INSERT INTO workflow_locks VALUES ('inbox', 7, 999999999, 'here', 0)")
    code, out, _ = plait(capsys, "doctor")
    assert code == 0 and "fixed  services workflow locks: released locks of dead processes: inbox" in out, out
    assert fake_models.store.query("SELECT status FROM workflow_runs WHERE id = 7")[0][0] == "interrupted"


def test_doctor_leaves_a_lock_held_on_another_host(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    # A home on a shared disk: a pid that is dead here may be alive there; a fresh heartbeat says it is.
    import time

    with fake_models.store.transaction() as conn:
        conn.execute("INSERT INTO workflow_locks VALUES ('inbox', 7, 999999999, 'other-laptop', ?)", (time.time(),))
    code, out, _ = plait(capsys, "doctor")
    assert code == 0 and "no workflow is held by a dead process" in out, out
    assert fake_models.store.query("SELECT count(*) FROM workflow_locks")[0][0] == 1


def test_a_deleted_model_file_is_named_by_models_check_and_on_use(tmp_path: Path, runtime: Runtime,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    assert plait(capsys, "models", "add", "mine", str(gguf))[0] == 0
    gguf.rename(tmp_path / "moved.gguf")
    code, out, _ = plait(capsys, "models", "check")
    assert code == 6 and f"missing  mine: model file {gguf}" in out and "models add mine NEW_PATH --replace" in out
    code, _, err = plait(capsys, "generate", "-m", "mine", "hello")
    assert code == 6 and str(gguf) in err and "plait models check" in err and len(err.strip().splitlines()) == 1
    assert plait(capsys, "models", "add", "mine", str(tmp_path / "moved.gguf"), "--replace")[0] == 0
    assert plait(capsys, "models", "check")[0] == 0


WORKFLOW = """
name: slow
trigger: {type: manual}
steps:
  - id: count
    task: test_count
    with: {text: "{{ item.text }}"}
  - id: note
    sink: file
    with: {path: "notes/{{ key }}.md", content: "{{ count.words }} words"}
"""


def _state(rt: Runtime) -> dict[str, object]:
    store = rt.store
    return {"items": dict(store.query("SELECT state, count(*) FROM workflow_items GROUP BY state")),
            "ledger": store.query("SELECT count(*) FROM workflow_effects")[0][0],
            "chunks": sorted(r[0] for r in store.query("SELECT text FROM index_chunks")),
            "files": dict(store.query("SELECT state, count(*) FROM index_files GROUP BY state"))}


def test_backup_while_a_workflow_and_an_ingestion_run_then_restore(fake_models: Runtime, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # Imported here, not at collection: its test tasks would otherwise join the task registry before the
    # schemathesis test builds its app's schema (and answer it with their deliberate failures).
    from tests import workflow_helpers as h

    h.reset()
    home = fake_models.settings.home
    notes = _notes(tmp_path / "notes", 150)
    wf = h.workflow(tmp_path, WORKFLOW)
    engine = Engine(wf, fake_models)
    for i in range(60):
        engine.submit({"text": f"item number {i} " * (i % 7 + 1)}, key=f"k{i:02d}")
    original_count = h.count

    def slow_count(text: str, name: str = "count") -> dict[str, object]:
        time.sleep(0.02)  # the backup lands while items are in flight
        return original_count(text, name)

    monkeypatch.setattr(h, "count", slow_count)
    threads = [threading.Thread(target=engine.run),
               threading.Thread(target=lambda: open_index(fake_models).add([notes]))]
    for t in threads:
        t.start()
    time.sleep(0.3)
    code, out, err = plait(capsys, "backup", str(tmp_path / "during"))
    for t in threads:
        t.join(120)
    assert code == 0, err
    assert (tmp_path / "during").stat().st_mode & 0o077 == 0  # private to its owner
    mid = json.loads((tmp_path / "during" / "manifest.json").read_text())
    assert "plait.db" in mid["databases"]

    # The backup taken mid-run restores into a sound home, which then finishes the same work to the same end.
    other = tmp_path / "restored"
    monkeypatch.setenv("PLAIT_HOME", str(other))
    code, _, err = plait(capsys, "restore", str(tmp_path / "during"))
    assert code == 0, err
    rt = fake_runtime(other)
    try:
        snapshot = _state(rt)
        assert sum(snapshot["items"].values()) == 60  # type: ignore[attr-defined]
        assert snapshot["items"] != {"done": 60} or snapshot["files"] != {"indexed": 150}, "backup after the work"
        assert rt.store.query("PRAGMA integrity_check")[0][0] == "ok"
        Engine(wf, rt).run()
        open_index(rt).add([notes])
        assert _state(rt) == _state(fake_models)
        assert open_index(rt).check().consistent
        assert _results(rt) == _results(fake_models)
    finally:
        rt.close()
    notes_written = sorted(p.name for p in (other / "output" / "slow" / "notes").iterdir())
    assert notes_written == [f"k{i:02d}.md" for i in range(60)]

    # A backup of the finished home restores to the same search results and workflow state.
    monkeypatch.setenv("PLAIT_HOME", str(home))
    assert plait(capsys, "backup", str(tmp_path / "after"))[0] == 0
    monkeypatch.setenv("PLAIT_HOME", str(other))
    code, _, err = plait(capsys, "restore", str(tmp_path / "after"))
    assert code == 4 and "--force" in err  # it does not overwrite a home by accident
    assert plait(capsys, "restore", str(tmp_path / "after"), "--force")[0] == 0
    rt = fake_runtime(other)
    try:
        assert _state(rt) == _state(fake_models) and _results(rt) == _results(fake_models)
    finally:
        rt.close()


def test_a_damaged_backup_is_refused_before_anything_is_replaced(fake_models: Runtime, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    open_index(fake_models).add([_notes(tmp_path / "notes", 5)])
    assert plait(capsys, "backup", str(tmp_path / "b"))[0] == 0
    code, _, err = plait(capsys, "backup", str(tmp_path / "b"))
    assert code == 4 and "not empty" in err
    db = tmp_path / "b" / "plait.db"
    raw = bytearray(db.read_bytes())
    raw[-100] ^= 0xFF
    db.write_bytes(bytes(raw))
    other = tmp_path / "other"
    monkeypatch.setenv("PLAIT_HOME", str(other))
    code, _, err = plait(capsys, "restore", str(tmp_path / "b"))
    assert code == 3 and "plait.db is missing or changed" in err
    assert not other.exists()
    assert load_settings().home == other
