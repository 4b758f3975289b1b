"""kill -9 in the middle of `plait run`, then run again: every item done exactly once, every sink's side
effect counted where it landed (files, table rows, digest lines, mail drafts, webhook deliveries).

The first test uses the fake models (fast); the second the real packaged models (`-m model`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from plait.runtime import Runtime
from tests.mailboxes import newsgroup_messages, write_maildir
from tests.workflow_processes import Receiver, kill_when_done, side_effects, start_plait, triage_workflow


def _kill_and_resume(tmp_path: Path, home: Path, n: int, kill_at: int, *, fakes: bool) -> dict:
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, newsgroup_messages(n))
    receiver = Receiver(delay=0.003)
    try:
        wf = triage_workflow(tmp_path / "triage.yml", name="triage", maildir=maildir, hook=receiver.url, batch=8)
        first = start_plait(home, ["run", str(wf), "--json"], fakes=fakes)
        at_kill = kill_when_done(first, home, "triage", kill_at)
        second = start_plait(home, ["run", str(wf), "--json"], fakes=fakes)
        out, err = second.communicate(timeout=600)
        assert second.returncode == 0, err.decode()[-3000:]
        resumed = json.loads(out)
        effects = side_effects(home, "triage", receiver)
    finally:
        receiver.close()
    assert 0 < at_kill.get("done", 0) < n, at_kill  # killed mid-run
    recorded = sum(at_kill.values())  # intake and processing interleave: the rest is read on restart
    assert resumed["added"] == n - recorded and resumed["done"] == n - at_kill["done"] and resumed["failed"] == 0
    assert effects["items"] == {"done": n}
    assert effects["ledger"] == {"note": n, "row": n, "digest": n, "draft": n, "hook": n}
    assert effects["note_files"] == effects["note_files_distinct"] == n
    assert effects["table_rows"] == effects["table_rows_distinct"] == n
    assert effects["digest_entries"] == n and effects["mail_drafts"] == n
    # A POST in flight at the kill is sent again with the same Idempotency-Key: never more than that one.
    assert effects["webhook_distinct_keys"] == n and effects["webhook_repeated_keys"] <= 1
    return effects


def test_kill_9_mid_run_then_restart_does_each_of_200_mails_exactly_once(tmp_path: Path,
                                                                          fake_models: Runtime) -> None:
    _kill_and_resume(tmp_path, fake_models.settings.home, 200, 60, fakes=True)


@pytest.mark.model
def test_kill_9_with_the_real_models(tmp_path: Path, runtime: Runtime) -> None:
    _kill_and_resume(tmp_path, runtime.settings.home, 40, 12, fakes=False)


def test_sigterm_stops_a_watching_run_cleanly(tmp_path: Path, fake_models: Runtime) -> None:
    import signal
    import time

    from tests.workflow_processes import item_counts

    maildir = tmp_path / "Maildir"
    write_maildir(maildir, newsgroup_messages(3))
    wf = tmp_path / "watch.yml"
    wf.write_text(f"name: watch\ntrigger: {{type: maildir, path: {maildir}, poll_seconds: 0.2}}\n"
                  "steps:\n  - template: '{{ item.subject }}'\n")
    proc = start_plait(fake_models.settings.home, ["run", str(wf), "--watch", "--json"], fakes=True)
    deadline = time.monotonic() + 60
    while item_counts(fake_models.settings.home, "watch").get("done", 0) < 3:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert json.loads(out)["status"] == "stopped"
