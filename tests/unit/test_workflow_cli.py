"""`plait run` and `plait workflows …` in-process: summaries, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plait.runtime import Runtime
from tests import workflow_helpers as h
from tests.cli import plait
from tests.homes import read_text


@pytest.fixture(autouse=True)
def _reset() -> None:
    h.reset()


FLOW = """name: notes
trigger: {type: manual}
retry: {attempts: 1}
steps:
  - id: up
    task: test_flaky
    with: {text: "{{ item.text }}", failures: "{{ item.failures }}"}
  - sink: file
    with: {path: "{{ key }}.md", content: "{{ up }}"}
"""


def test_validate_reports_every_problem_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = tmp_path / "good.yml", tmp_path / "bad.yml"
    good.write_text(FLOW)
    bad.write_text("name: b\ntrigger: {type: manual}\nsteps:\n  - task: nope\n  - sink: file\n    with: {}\n")
    code, out, err = plait(capsys, "workflows", "validate", str(good), str(bad))
    assert code == 4
    assert f"{good}: ok — 'notes', trigger manual, 2 step(s)" in out
    assert err.splitlines() == [f"{bad}:4: steps[0].task: unknown task 'nope'; known tasks: "
                                + err.splitlines()[0].split("known tasks: ")[1],
                                f"{bad}:6: steps[1].with.path: required, but missing"]


def test_run_a_file_with_a_bad_step_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("name: b\ntrigger: {type: manual}\nsteps:\n  - template: '{{ item.x '\n")
    code, _, err = plait(capsys, "run", str(bad))
    assert code == 4 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"plait: error: {bad}:4: steps[0].template: template syntax error")


def test_run_status_history_and_retry(tmp_path: Path, fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    flow = tmp_path / "notes.yml"
    flow.write_text(FLOW)
    code, out, err = plait(capsys, "run", str(flow), "--item", '{"text": "fine", "failures": 0}', "--key", "a")
    assert code == 0 and "notes: run 1 finished: 0 new item(s), 1 done, 0 failed" in out
    code, out, err = plait(capsys, "run", str(flow), "--item", '{"text": "wobbly", "failures": 1}', "--key", "b")
    assert code == 1 and "1 failed" in out and "failed b: step 'up': ConnectionError: temporary failure #1" in err
    code, out, _ = plait(capsys, "workflows", "status", "notes")
    assert code == 0 and "notes: 2 item(s): 1 done, 1 failed" in out
    assert "b: step 'up': ConnectionError: temporary failure #1" in out and "effects: file 1" in out
    code, out, _ = plait(capsys, "workflows", "retry", "notes", "--file", str(flow))
    assert code == 0 and "1 failed item(s) back to pending" in out and "1 done, 0 failed" in out
    code, out, _ = plait(capsys, "workflows", "history", "notes")
    assert code == 0 and out.count("run ") >= 3 and "retry" in out and "latest effects:" in out
    assert read_text(fake_models.settings.home / "output" / "notes" / "b.md") == "ok after 2"
    code, out, _ = plait(capsys, "workflows", "status", "notes", "--json")
    assert json.loads(out)["counts"]["done"] == 2


def test_dry_run_writes_nothing(tmp_path: Path, fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    flow = tmp_path / "notes.yml"
    flow.write_text(FLOW)
    code, out, _ = plait(capsys, "run", str(flow), "--dry-run", "--item", '{"text": "x", "failures": 0}')
    assert code == 0 and "dry run" in out and '"would_write"' in out
    assert not (fake_models.settings.home / "output").exists()


def test_enable_a_bundled_workflow_and_list(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plait(capsys, "workflows", "bundled")
    assert code == 0 and "inbox-triage" in out and "weekly-report" in out
    code, out, _ = plait(capsys, "workflows", "enable", "inbox-triage")
    assert code == 0 and (fake_models.settings.home / "workflows" / "inbox-triage.yml").exists()
    code, out, _ = plait(capsys, "workflows", "list")
    assert code == 0 and out.startswith("inbox-triage") and "enabled" in out and "maildir" in out
    code, _, err = plait(capsys, "workflows", "enable", "inbox-triage")  # already enabled: nothing to do
    assert code == 0


def test_webhook_key_and_steps(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plait(capsys, "workflows", "webhook-key", "hooks")
    assert code == 0 and out.startswith("plaitwh-")
    code, out, _ = plait(capsys, "workflows", "steps")
    assert code == 0 and "summarize" in out and "digest" in out and "imap" in out
