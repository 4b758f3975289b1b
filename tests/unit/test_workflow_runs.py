"""A workflow run's lock and the threads it keeps: the lock stays its own however long a step takes, a
holder on another host is judged by its heartbeat, and a long-running `plait up` does not pile up database
connections."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plait.runtime import Runtime
from plait.workflows import state as state_module
from plait.workflows.clock import ManualClock
from plait.workflows.engine import Engine
from plait.workflows.errors import WorkflowBusy
from plait.workflows.state import STALE_LOCK_SECONDS, WorkflowState
from tests import workflow_helpers as h
from tests.homes import open_files


@pytest.fixture(autouse=True)
def _reset() -> None:
    h.reset()


def _wait(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_fresh_heartbeat_from_another_host_keeps_the_lock(fake_models: Runtime) -> None:
    state = h.state(fake_models, "t")
    with fake_models.store.transaction() as conn:  # pid 1 there says nothing about a process here
        conn.execute("INSERT INTO workflow_locks VALUES ('t', 99, 1, 'other-host', ?)", (time.time(),))
    with pytest.raises(WorkflowBusy, match="pid 1 on other-host"):
        state.start_run("run")
    with fake_models.store.transaction() as conn:  # that host went quiet: its run died with it
        conn.execute("UPDATE workflow_locks SET heartbeat_at = ?", (time.time() - STALE_LOCK_SECONDS - 1,))
    run_id = state.start_run("run")
    assert state.running() == {"workflow": "t", "run_id": run_id, "pid": os.getpid(), "host": state.host,
                               "heartbeat_at": pytest.approx(time.time(), abs=60)}


def test_a_step_longer_than_the_stale_time_keeps_the_lock(tmp_path: Path, fake_models: Runtime,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_module, "HEARTBEAT_SECONDS", 0.01, raising=False)
    clock = ManualClock(1_000_000.0)
    wf = h.workflow(tmp_path, "name: t\ntrigger: {type: manual}\nretry: {attempts: 1}\nsteps:\n  - task: test_count\n")
    seen: list[str] = []
    original = h.count

    def slow_step(text: str, name: str = "count") -> dict[str, Any]:
        clock.advance(STALE_LOCK_SECONDS + 1)  # a model step, or a mailbox scan, longer than the stale time
        lock = WorkflowState(fake_models.store, "t", clock)
        deadline = time.monotonic() + 20  # the run's own thread writes a heartbeat meanwhile
        while (lock.running() or {}).get("heartbeat_at", 0) < clock.now() and time.monotonic() < deadline:
            time.sleep(0.01)
        try:  # what `plait run` beside `plait up` would do now
            lock.start_run("run")
            seen.append("taken over")
        except WorkflowBusy as exc:
            seen.append(str(exc))
        return original(text, name)

    monkeypatch.setattr(h, "count", slow_step)
    engine = Engine(wf, fake_models, clock=clock)
    engine.submit({"text": "one"}, key="a")
    summary = engine.run()
    assert seen == ["workflow 't' is already running in this process"]
    assert summary.done == 1 and h.CALLS == {"count:one": 1}  # the item ran once
    assert h.state(fake_models, "t").runs()[0].status == "finished"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_many_wakes_of_a_watching_run_do_not_pile_up_connections(tmp_path: Path, fake_models: Runtime) -> None:
    concurrency, rounds, per_round = 4, 8, 8
    wf = h.workflow(tmp_path, f"""
name: t
trigger: {{type: manual}}
concurrency: {concurrency}
steps:
  - id: line
    template: "{{{{ item.n }}}}"
  - sink: table
    with: {{table: log, columns: {{n: "{{{{ line }}}}"}}}}
""")
    home = fake_models.settings.home
    engine = Engine(wf, fake_models)
    thread = threading.Thread(target=engine.run, kwargs={"watch": True})
    thread.start()
    try:
        for r in range(rounds):  # each wake reads the trigger and drains what came
            for i in range(per_round):
                engine.submit({"n": r * per_round + i}, key=f"k{r}-{i}")
            _wait(lambda r=r: h.state(fake_models, "t").counts()["done"] == (r + 1) * per_round)
        # One connection per thread that uses each database: here the test's and the run's, its heartbeat's
        # and its item threads'; the table only the item threads'. Not more with every wake (31 and 32 when
        # each wake had new threads). SQLite may keep a closed one's descriptor while others lock the file: + 3.
        assert open_files(home / "plait.db") <= concurrency + 3 + 3
        assert 0 < open_files(home / "workflows" / "tables.db") <= concurrency + 3
    finally:
        engine.stop()
        thread.join(30)
