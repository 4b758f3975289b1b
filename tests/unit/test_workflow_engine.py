"""The workflow engine with fake models: steps, control flow, durability, retries, failures, dry runs."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from plait.runtime import Runtime
from plait.workflows.clock import ManualClock
from plait.workflows.engine import Engine
from plait.workflows.errors import SpecError, WorkflowBusy
from plait.workflows.spec import RetryPolicy, SinkStep, TaskStep, TemplateStep, TriggerSpec, Workflow
from tests import workflow_helpers as h
from tests.homes import open_db, read_text


@pytest.fixture(autouse=True)
def _reset() -> None:
    h.reset()


MANUAL = """
name: {name}
trigger: {{type: manual}}
retry: {{attempts: 2, backoff_seconds: 0}}
steps:
"""


def _wf(tmp_path: Path, steps: str, name: str = "t") -> Workflow:
    return h.workflow(tmp_path, MANUAL.format(name=name) + steps)


def _run(wf: Workflow, rt: Runtime, items: list[dict], **kw: object) -> object:
    engine = Engine(wf, rt, **kw)  # type: ignore[arg-type]
    for i, item in enumerate(items):
        engine.submit(item, key=f"k{i}")
    return engine.run()


def test_steps_run_in_order_with_when_route_map_and_set(tmp_path: Path, fake_models: Runtime) -> None:
    wf = _wf(tmp_path, """
  - id: shout
    template: "{{ item.text | upper }}"
  - set: {size: "{{ item.text.split() | length }}"}
  - id: long
    when: "item.size > 2"
    template: "long: {{ shout }}"
  - id: kind
    route:
      - name: question
        when: "'?' in item.text"
        steps:
          - id: q
            template: "Q {{ item.text }}"
      - steps:
          - id: other
            template: "not a question"
  - id: words
    map: "item.text.split()"
    as: word
    steps:
      - id: counted
        task: test_count
        with: {text: "{{ word }}"}
  - sink: file
    with:
      path: "out/{{ key }}.json"
      data: >-
        {{ {'shout': shout, 'long': long, 'kind': kind.branch,
            'words': words | map(attribute='counted') | map(attribute='text') | list} }}
""")
    summary = _run(wf, fake_models, [{"text": "is it on?"}, {"text": "hi there"}])
    assert summary.done == 2 and summary.failed == 0  # type: ignore[attr-defined]
    out = fake_models.settings.home / "output" / "t" / "out"
    first = json.loads(read_text(out / "k0.json"))
    assert first == {"shout": "IS IT ON?", "long": "long: IS IT ON?", "kind": "question", "words": ["is", "it", "on?"]}
    second = json.loads(read_text(out / "k1.json"))
    assert second["long"] is None and second["kind"] == 1 and second["words"] == ["hi", "there"]
    records = h.state(fake_models, "t").steps(h.state(fake_models, "t").items()[0].id)
    assert records["long"].state == "done" and records["kind.q"].state == "done" and "kind.other" not in records
    assert records["words[2].counted"].output == {"text": "on?", "words": 1}
    assert h.state(fake_models, "t").items()[1].state == "done"
    assert h.state(fake_models, "t").steps(h.state(fake_models, "t").items()[1].id)["long"].state == "skipped"


def test_a_failing_step_fails_its_item_after_retries_and_the_others_finish(tmp_path: Path,
                                                                          fake_models: Runtime) -> None:
    wf = _wf(tmp_path, """
  - id: up
    task: test_explode
  - sink: file
    with: {path: "{{ key }}.txt", content: "{{ up }}"}
""")
    summary = _run(wf, fake_models, [{"text": "fine"}, {"text": "boom here"}, {"text": "also fine"}])
    assert (summary.done, summary.failed) == (2, 1)  # type: ignore[attr-defined]
    st = h.state(fake_models, "t")
    failed = st.items("failed")
    assert [i.key for i in failed] == ["k1"]
    assert "step 'up': ValueError: cannot handle 'boom here'" in failed[0].error
    assert st.steps(failed[0].id)["up"].attempts == 2  # retried once (attempts: 2), then failed
    out = fake_models.settings.home / "output" / "t"
    assert sorted(p.name for p in out.iterdir()) == ["k0.txt", "k2.txt"]  # nothing half-done for k1


def test_a_template_error_fails_the_item_at_once_with_a_clear_message(tmp_path: Path, fake_models: Runtime) -> None:
    wf = _wf(tmp_path, """
  - id: greet
    template: "Dear {{ item.name }}"
""")
    summary = _run(wf, fake_models, [{"text": "x", "name": "Ann"}, {"text": "no name here"}])
    assert (summary.done, summary.failed) == (1, 1)  # type: ignore[attr-defined]
    failed = h.state(fake_models, "t").items("failed")[0]
    assert "'dict object' has no attribute 'name'" in failed.error and "item.text" in failed.error
    assert h.state(fake_models, "t").steps(failed.id)["greet"].attempts == 1  # not retried: it cannot help


def test_transient_errors_are_retried_with_backoff_on_the_clock(tmp_path: Path, fake_models: Runtime) -> None:
    wf = h.workflow(tmp_path, """
name: t
trigger: {type: manual}
retry: {attempts: 3, backoff_seconds: 10}
steps:
  - id: try
    task: test_flaky
    with: {text: "{{ item.text }}", failures: 2}
""")
    clock = ManualClock(1_000_000.0)
    engine = Engine(wf, fake_models, clock=clock)
    engine.submit({"text": "a"}, key="a")
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(engine.run()))
    thread.start()
    waits = []
    for attempt, expected in ((1, 10), (2, 20)):  # doubling backoff: 10 s after failure 1, 20 s after failure 2
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (
                clock.sleepers and h.state(fake_models, "t").items()[0].attempts == attempt):
            time.sleep(0.005)
        item = h.state(fake_models, "t").items()[0]
        waits.append(round(h.state(fake_models, "t").next_due() - clock.now()))  # type: ignore[operator]
        assert item.state == "pending" and "temporary failure" in (item.error or "")
        clock.advance(expected)
    thread.join(10)
    assert waits == [10, 20]
    assert result[0].done == 1 and result[0].retried == 2  # type: ignore[attr-defined]
    assert h.state(fake_models, "t").steps(h.state(fake_models, "t").items()[0].id)["try"].output == "ok after 3"


def test_a_killed_run_resumes_without_repeating_done_steps_or_effects(tmp_path: Path, fake_models: Runtime) -> None:
    wf = _wf(tmp_path, """
  - id: counted
    task: test_count
  - id: fragile
    task: test_crash
  - sink: file
    with: {path: "{{ key }}.txt", content: "{{ counted.text }}"}
""")
    h.CRASH_AT["after"] = 3  # the 4th item dies in its second step, after its first step was stored
    engine = Engine(wf, fake_models)
    for i in range(6):
        engine.submit({"text": f"text {i}"}, key=f"k{i}")
    with pytest.raises(h.Crash):
        engine.run()
    st = h.state(fake_models, "t")
    assert st.counts()["done"] == 3 and st.counts()["running"] == 3  # the claimed batch: one mid-step
    assert st.runs(1)[0].status == "interrupted"
    summary = Engine(wf, fake_models).run()
    assert summary.done == 3 and st.counts() == {"pending": 0, "running": 0, "done": 6, "failed": 0, "skipped": 0}
    # The interrupted item's first step was done before the crash: it was not run again.
    assert all(h.CALLS[f"count:text {i}"] == 1 for i in range(6))
    assert len(st.effects()) == 6 and len(list((fake_models.settings.home / "output" / "t").iterdir())) == 6


def test_sinks_act_once_per_item_even_when_the_item_comes_again(tmp_path: Path, fake_models: Runtime) -> None:
    wf = _wf(tmp_path, """
  - sink: table
    with: {table: seen, columns: {text: "{{ item.text }}"}}
""")
    _run(wf, fake_models, [{"text": "a"}, {"text": "b"}])
    summary = _run(wf, fake_models, [{"text": "a"}, {"text": "b"}])  # same keys: known items
    assert summary.added == 0 and summary.done == 0  # type: ignore[attr-defined]

    rows = open_db(fake_models.settings.home / "workflows" / "tables.db").execute(
        "SELECT _key, text FROM seen ORDER BY _key").fetchall()
    assert rows == [("t/k0/table", "a"), ("t/k1/table", "b")]
    assert h.state(fake_models, "t").effect_counts() == {"table": 2}


def test_dry_run_shows_what_would_happen_and_changes_nothing(tmp_path: Path, fake_models: Runtime) -> None:
    wf = _wf(tmp_path, """
  - id: gist
    task: summarize
    with: {text: "{{ item.text }}", style: one-line}
  - sink: file
    with: {path: "{{ key }}.md"}
""")
    summary = _run(wf, fake_models, [{"text": "The launch went well. Everyone was pleased with it."}], dry_run=True)
    assert summary.done == 1 and summary.previews  # type: ignore[attr-defined]
    preview = summary.previews[0]["steps"]["file"]  # type: ignore[attr-defined]
    assert preview["dry_run"] and preview["would_write"].endswith("k0.md")
    assert not (fake_models.settings.home / "output").exists()
    assert h.state(fake_models, "t").counts()["done"] == 0 and not h.state(fake_models, "t").runs()


def test_concurrency_processes_items_in_parallel_with_step_limits(tmp_path: Path, fake_models: Runtime) -> None:
    wf = h.workflow(tmp_path, """
name: t
trigger: {type: manual}
concurrency: 4
steps:
  - id: counted
    task: test_count
  - sink: file
    with: {path: "{{ key }}.txt", content: "{{ counted.words }}"}
""")
    summary = _run(wf, fake_models, [{"text": f"w {i}"} for i in range(20)])
    assert summary.done == 20  # type: ignore[attr-defined]
    assert len(list((fake_models.settings.home / "output" / "t").iterdir())) == 20


def test_a_second_process_cannot_run_the_same_workflow(tmp_path: Path, fake_models: Runtime) -> None:
    import os

    wf = _wf(tmp_path, "  - template: x\n")
    with fake_models.store.transaction() as conn:  # a live process (our parent) holds the lock
        conn.execute("INSERT INTO workflow_locks VALUES ('t', 99, ?, ?, ?)",
                     (os.getppid(), h.state(fake_models, "t").host, time.time()))
    with pytest.raises(WorkflowBusy, match="already running"):
        Engine(wf, fake_models).run()


def test_a_workflow_built_in_python_is_checked_like_a_file(fake_models: Runtime) -> None:
    wf = Workflow(name="py", trigger=TriggerSpec(type="manual"), retry=RetryPolicy(attempts=1),
                  steps=[TemplateStep(id="hello", template="Hello {{ item.who }}"),
                         TaskStep(task="test_count", with_={"text": "{{ hello }}"}),
                         SinkStep(sink="file", with_={"path": "{{ key }}.txt", "content": "{{ hello }}"})])
    engine = Engine(wf, fake_models)
    engine.submit({"who": "Ada"}, key="one")
    assert engine.run().done == 1
    assert read_text(fake_models.settings.home / "output" / "py" / "one.txt") == "Hello Ada"
    bad = Workflow(name="py2", trigger=TriggerSpec(type="manual"), steps=[TaskStep(task="no_such_task")])
    with pytest.raises(SpecError, match="unknown task 'no_such_task'"):
        Engine(bad, fake_models)
