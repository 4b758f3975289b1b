"""A workflow's per-item task steps on a real local Ray instance (127.0.0.1 only): the steps run in Ray worker
processes, the ledger and the sinks stay in the plait process and act exactly once per item, with a worker
killed mid-run and with the plait process itself killed and run again.

Each item's task (``test_where``, tests/ray_helpers.py) appends its text to a log file as it starts, so the
calls are counted across worker processes; the sinks' effects are counted where they landed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from plait.distributed.ray_tasks import RayTasks
from plait.runtime import Runtime
from plait.workflows.engine import Engine, EngineEvent
from tests import ray_helpers  # noqa: F401 - declares the test_where task, as a plugin declares its own
from tests.fakes import fake_runtime
from tests.homes import open_db
from tests.workflow_helpers import state, workflow
from tests.workflow_processes import REPO, item_counts, kill_when_done

pytestmark = pytest.mark.ray

ITEMS = 60
SECONDS = 0.05  # per item: long enough to kill a worker while it holds some

WORKFLOW = """
name: {name}
trigger: {trigger}
executor: ray
batch_size: 8
steps:
  - id: where
    task: test_where
    with: {{text: "{{{{ {text} }}}}", seconds: {seconds}, log: "{log}"}}
  - sink: table
    with: {{table: seen, columns: {{text: "{{{{ where.text }}}}", pid: "{{{{ where.pid }}}}"}}}}
  - sink: file
    with: {{path: "{{{{ key }}}}.txt", content: "{{{{ where.text }}}} by {{{{ where.pid }}}}"}}
"""


def table_rows(home: Path) -> list[tuple[str, str, int]]:
    conn = open_db(home / "workflows" / "tables.db", readonly=True)
    try:
        return [(str(r[0]), str(r[1]), int(r[2])) for r in conn.execute("SELECT _key, text, pid FROM seen")]
    finally:
        conn.close()


def calls(log: Path) -> Counter[str]:
    return Counter(log.read_text(encoding="utf-8").splitlines()) if log.exists() else Counter()


def manual_workflow(tmp_path: Path, log: Path) -> Any:
    return workflow(tmp_path, WORKFLOW.format(name="backfill", trigger="{type: manual}", text="item.text",
                                              seconds=SECONDS, log=log))


def check_exactly_once(rt: Runtime, name: str, texts: list[str]) -> list[tuple[str, str, int]]:
    """Every item done, one table row and one file each, one ledger entry per item and sink."""
    home = rt.settings.home
    assert state(rt, name).counts()["done"] == len(texts)
    rows = table_rows(home)
    assert sorted(r[1] for r in rows) == sorted(texts)
    assert len({r[0] for r in rows}) == len(rows)
    files = list((home / "output" / name).glob("*.txt"))
    assert len(files) == len(texts)
    assert state(rt, name).effect_counts() == {"table": len(texts), "file": len(texts)}
    return rows


def test_task_steps_run_on_ray_workers_and_sinks_act_once(tmp_path: Path, ray_instance: Any) -> None:
    rt = fake_runtime(tmp_path / "home")
    log = tmp_path / "calls.log"
    wf = manual_workflow(tmp_path, log)
    texts = [f"item {i}" for i in range(ITEMS)]
    tasks = RayTasks(rt, workers=2, worker_cpus=1)
    engine = Engine(wf, rt, tasks=tasks)
    try:
        for i, text in enumerate(texts):
            engine.submit({"text": text}, key=f"k{i}")
        summary = engine.run()
        assert tasks.pool is not None
        workers = set(tasks.pool.pids)
    finally:
        tasks.close()
        engine.close()
    assert summary.done == ITEMS and summary.failed == 0
    rows = check_exactly_once(rt, "backfill", texts)
    ran_in = {r[2] for r in rows}
    assert ran_in == workers and len(workers) == 2 and os.getpid() not in ran_in  # both workers, not here
    assert calls(log) == Counter(texts)  # each step ran once

    # The same items again: known to the ledger, nothing runs.
    again = Engine(wf, rt, tasks=RayTasks(rt, workers=1, worker_cpus=1))
    for i, text in enumerate(texts):
        again.submit({"text": text}, key=f"k{i}")
    assert again.run().done == 0 and again.tasks is not None and again.tasks.pool is None  # type: ignore[attr-defined]
    check_exactly_once(rt, "backfill", texts)


def test_a_worker_killed_mid_run_loses_and_repeats_no_item(tmp_path: Path, ray_instance: Any) -> None:
    rt = fake_runtime(tmp_path / "home")
    log = tmp_path / "calls.log"
    wf = manual_workflow(tmp_path, log)
    texts = [f"item {i}" for i in range(ITEMS)]
    tasks = RayTasks(rt, workers=2, worker_cpus=1)
    killed: dict[str, int] = {}
    done = [0]

    def kill_a_worker(event: EngineEvent) -> None:
        if event.kind != "done":
            return
        done[0] += 1
        if done[0] == 10 and tasks.pool is not None:
            killed.update(pid=tasks.pool.pids[0], items_before=done[0])
            os.kill(killed["pid"], signal.SIGKILL)

    engine = Engine(wf, rt, tasks=tasks, on_event=kill_a_worker)
    try:
        for i, text in enumerate(texts):
            engine.submit({"text": text}, key=f"k{i}")
        summary = engine.run()
        assert tasks.pool is not None
        replaced, workers = tasks.pool.replaced, set(tasks.pool.pids)
    finally:
        tasks.close()
        engine.close()
    n_calls = calls(log)
    print(f"workflow worker kill: {killed['items_before']} items done at the kill, {summary.done} after; "
          f"{replaced} worker(s) replaced; {sum(n_calls.values())} task calls for {ITEMS} items")
    assert killed and replaced == 1 and killed["pid"] not in workers
    assert summary.done == ITEMS and summary.failed == 0
    check_exactly_once(rt, "backfill", texts)
    # Only the calls the killed worker held were sent again (at most the items in flight: 2 per worker).
    assert set(n_calls) == set(texts) and sum(n_calls.values()) - ITEMS <= 4


def _plait_run(home: Path, wf: Path, address: str) -> subprocess.Popen[bytes]:
    code = ("import sys; sys.argv[0] = 'plait'; import tests.fakes, tests.ray_helpers; "
            "from plait.cli.main import run; run(sys.argv[1:])")
    env = {**os.environ, "PLAIT_HOME": str(home), "PLAIT_CHAT_MODEL": "fake-chat", "PLAIT_EMBED_MODEL": "fake-embed",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    args = ["run", str(wf), "--executor", "ray", "--address", address, "--workers", "2", "--worker-cpus", "1",
            "--json"]
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_the_plait_process_killed_mid_run_then_rerun_does_only_what_is_missing(tmp_path: Path,
                                                                               ray_address: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = [f"note-{i:03d}.txt" for i in range(ITEMS)]
    for name in names:
        (inbox / name).write_text(name)
    log = tmp_path / "calls.log"
    trigger = f'{{type: folder, path: "{inbox}", watch: false, settle_seconds: 0}}'
    wf = tmp_path / "backfill.yml"
    wf.write_text(WORKFLOW.format(name="backfill", trigger=trigger, text="item.name", seconds=SECONDS, log=log))
    home = tmp_path / "home"
    fake_runtime(home).close()

    first = _plait_run(home, wf, ray_address)
    at_kill = kill_when_done(first, home, "backfill", done=15, timeout=240)
    calls_at_kill = calls(log)
    rt = fake_runtime(home)
    done_at_kill = {r[1] for r in table_rows(home)}
    second = _plait_run(home, wf, ray_address)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err.decode()[-3000:]
    n_calls = calls(log)
    print(f"workflow driver kill: {at_kill} at the kill ({sum(calls_at_kill.values())} task calls); after the "
          f"rerun {item_counts(home, 'backfill')}, {sum(n_calls.values())} task calls for {ITEMS} items")
    assert 15 <= at_kill.get("done", 0) < ITEMS
    check_exactly_once(rt, "backfill", names)
    assert all(n_calls[name] == 1 for name in done_at_kill)  # what was done was not run again
    # Only items in flight at the kill ran twice (their results were never recorded).
    assert sum(n_calls.values()) - ITEMS <= sum(1 for name in calls_at_kill if name not in done_at_kill)

