"""`plait index add --executor ray` on a real local Ray instance (127.0.0.1 only): the same chunks and vectors
as the local path, a Ray worker killed mid-run, the driver killed mid-run and run again.

One Ray instance for the module (~6-15 s to start on two busy cores); the ingests use small flushes so a
few hundred passages make many flushes in flight.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from plait.distributed.ray_embedding import RayEmbedding
from plait.index import ingest
from plait.index.core import Index
from plait.runtime import Runtime
from plait.settings import load_settings
from tests.homes import open_db
from tests.ray_helpers import add_slow_embedder, non_loopback_listeners, ray_processes, write_corpus

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[2]
SNAPSHOT = ("SELECT d.source, c.position, c.text, c.embed_hash, v.vector FROM index_chunks c "
            "JOIN index_documents d ON d.id = c.document_id JOIN index_vectors v ON v.chunk_id = c.id "
            "ORDER BY d.source, c.position")


def snapshot(rt: Runtime) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in rt.store.query(SNAPSHOT)]


def duplicates(rt: Runtime) -> int:
    row = rt.store.query("SELECT count(*) - count(DISTINCT document_id || ':' || position) FROM index_chunks")
    return int(row[0][0])


def home_runtime(base: Path, name: str, **settings: Any) -> Runtime:
    home = base / name
    home.mkdir()
    models = Path(os.environ["PLAIT_HOME"]) / "models"
    if models.exists():  # the session's built models (minilm-q8), for the real-model test
        (home / "models").symlink_to(models.resolve())
    return Runtime(load_settings(home=home, **settings))


@pytest.fixture
def small_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "FLUSH_CHUNKS", 32)  # many flushes in flight, on both paths alike


@pytest.mark.model
def test_ray_gives_the_same_chunks_and_vectors_as_the_local_path(tmp_path: Path, ray_instance: Any,
                                                                   small_flushes: None) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, articles=40, sentences_per_file=8, sentence_files=120)
    for i in range(0, 40, 4):  # copies: texts a flush still in flight embeds are reused, not embedded twice
        (docs / f"copy-{i}.txt").write_text((docs / f"doc-{i:04d}.txt").read_text() + "\n\nA copy.")
    local = home_runtime(tmp_path, "local")
    on_ray = home_runtime(tmp_path, "ray")
    local_report = Index(local).add([docs])
    executor = RayEmbedding(Index(on_ray), workers=2, worker_cpus=1)
    try:
        ray_report = Index(on_ray).add([docs], executor=executor)
        assert executor.pool is not None and executor.window == 4
        assert not non_loopback_listeners(ray_processes())
    finally:
        executor.close()
    assert ray_report.chunks_added == local_report.chunks_added > 200
    assert ray_report.chunks_embedded == local_report.chunks_embedded < local_report.chunks_added
    assert snapshot(on_ray) == snapshot(local)  # texts, order and vectors, bit for bit
    assert on_ray.store.query("SELECT embed_model, dimensions FROM index_state")[0][:] == ("minilm-q8", 384)
    again = RayEmbedding(Index(on_ray), workers=2, worker_cpus=1)
    rerun = Index(on_ray).add([docs], executor=again)
    assert rerun.chunks_embedded == 0 and again.pool is None  # nothing new: no worker was even started
    hits = Index(on_ray).status().consistency
    assert hits is not None and hits.consistent


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(tmp_path: Path, ray_instance: Any,
                                                           small_flushes: None) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, articles=100, sentences_per_file=6)
    local = home_runtime(tmp_path, "local", embed_model="slow-embed")
    on_ray = home_runtime(tmp_path, "ray", embed_model="slow-embed")
    for rt in (local, on_ray):
        add_slow_embedder(rt)
    baseline = Index(local).add([docs])
    executor = RayEmbedding(Index(on_ray), workers=2, worker_cpus=1)
    killed: dict[str, int] = {}

    def kill_a_worker(progress: Any) -> None:
        if progress.chunks_added and not killed and executor.pool is not None:
            killed.update(pid=executor.pool.pids[0], passages_before=progress.chunks_added)
            os.kill(killed["pid"], signal.SIGKILL)

    try:
        report = Index(on_ray).add([docs], executor=executor, progress=kill_a_worker)
        assert executor.pool is not None
        replaced = executor.pool.replaced
        assert killed["pid"] not in executor.pool.pids
    finally:
        executor.close()
    print(f"worker kill: {killed['passages_before']} passages committed at the kill, {report.chunks_added} after; "
          f"{replaced} worker(s) replaced; local baseline {baseline.chunks_added}")
    assert replaced == 1 and 0 < killed["passages_before"] < baseline.chunks_added
    assert report.chunks_added == baseline.chunks_added and report.chunks_embedded == baseline.chunks_embedded
    assert duplicates(on_ray) == 0
    assert snapshot(on_ray) == snapshot(local)
    assert on_ray.store.query("SELECT count(*) FROM index_files WHERE state != 'indexed'")[0][0] == 0


def _plait_index_add(home: Path, docs: Path, address: str) -> subprocess.Popen[bytes]:
    """`plait index add --executor ray` in its own process (the slow embedder registered, as a plugin would)."""
    code = "import sys; sys.argv[0] = 'plait'; import tests.ray_helpers; from plait.cli.main import run; " \
           "run(sys.argv[1:])"
    env = {**os.environ, "PLAIT_HOME": str(home), "PLAIT_EMBED_MODEL": "slow-embed",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = ["index", "add", str(docs), "--executor", "ray", "--address", address, "--workers", "2",
            "--worker-cpus", "1", "--json"]
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def _committed(home: Path) -> tuple[int, int]:
    """(passages, distinct texts) in the home's index now, read while another process writes it."""
    db = home / "plait.db"
    if not db.exists():
        return 0, 0
    conn = open_db(db, readonly=True)
    try:
        row = conn.execute("SELECT count(*), count(DISTINCT embed_hash) FROM index_chunks").fetchone()
    except Exception:  # noqa: BLE001 - the schema is not there yet
        return 0, 0
    finally:
        conn.close()
    return int(row[0]), int(row[1])


def test_the_driver_killed_mid_run_then_rerun_embeds_only_what_is_missing(tmp_path: Path, ray_address: str) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs, articles=150, sentences_per_file=6)
    local = home_runtime(tmp_path, "local", embed_model="slow-embed")
    add_slow_embedder(local)
    baseline = Index(local).add([docs])
    on_ray = home_runtime(tmp_path, "ray", embed_model="slow-embed")
    add_slow_embedder(on_ray)
    home = on_ray.settings.home
    on_ray.close()

    first = _plait_index_add(home, docs, ray_address)
    deadline = time.monotonic() + 240
    while (at_kill := _committed(home))[0] < 100:
        if first.poll() is not None:
            raise AssertionError(f"plait index add ended before the kill: {first.communicate()[1].decode()[-2000:]}")
        assert time.monotonic() < deadline, "no passage was committed in time"
        time.sleep(0.02)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)
    at_kill = _committed(home)  # what the kill left (a commit may have landed between the poll and the kill)

    second = _plait_index_add(home, docs, ray_address)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()[-3000:]
    rerun = json.loads(out)
    after = Runtime(load_settings(home=home))
    print(f"driver kill: {at_kill[0]} passages committed at the kill; rerun embedded {rerun['chunks_embedded']}, "
          f"{rerun['chunks_reused']} reused; {len(snapshot(after))} passages after; local baseline "
          f"{baseline.chunks_added}")
    assert 0 < at_kill[0] < baseline.chunks_added
    assert rerun["chunks_embedded"] == baseline.chunks_embedded - at_kill[1]  # only what was missing
    assert duplicates(after) == 0
    assert snapshot(after) == snapshot(local)
