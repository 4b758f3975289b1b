"""The bundled workflows as they ship, on the real packaged models (MiniLM, spaCy) and real text."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from plait.runtime import Runtime
from plait.workflows.enabled import BUNDLED
from plait.workflows.engine import Engine
from plait.workflows.loader import load_workflow
from tests.corpora import lee_articles
from tests.homes import open_db, read_text
from tests.mailboxes import newsgroup_messages, write_maildir

pytestmark = pytest.mark.model


def test_inbox_triage_labels_summarises_and_writes_a_morning_digest(tmp_path: Path, runtime: Runtime,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, newsgroup_messages(12, threading=True))
    monkeypatch.setenv("PLAIT_MAILDIR", str(maildir))
    wf = load_workflow(BUNDLED / "inbox-triage.yml")
    summary = Engine(wf, runtime).run()
    assert (summary.added, summary.done, summary.failed) == (12, 12, 0), summary.errors
    out = runtime.settings.home / "output" / "inbox-triage"
    notes = list((out / "triage").rglob("*.md"))
    assert len(notes) == 12 and all(n.parent.name in [*wf.vars["labels"], "unsure"] for n in notes)
    assert all(read_text(n).startswith("# ") for n in notes)
    digest = read_text(next((out / "digest").glob("*.md")))
    assert digest.startswith("# Morning digest") and "12 message(s)" in digest and ".png)" in digest
    today = json.loads(read_text(out / "digest" / "latest.json"))
    assert today["messages"] == 12 and sum(t["new"] for t in today["threads"]) == 12
    # What the digest says is the senders' own words: no quoted line, no attribution.
    assert not any(">" in t["about"] or "writes:" in t["about"] for t in today["threads"])
    rows = open_db(runtime.settings.home / "workflows" / "tables.db").execute(
        "SELECT COUNT(*), COUNT(DISTINCT label) FROM inbox").fetchone()
    assert rows[0] == 12 and rows[1] >= 2


def _mail(n: int, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"person{n}@example.org", "me@example.org", subject
    msg["Message-ID"] = f"<meet-{n}@example.org>"
    msg.set_content(body)
    return msg


def test_meeting_requests_become_proposals_in_free_time_and_reply_drafts(tmp_path: Path, runtime: Runtime,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.calendar import read_calendar

    start = (datetime.now().astimezone() + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    busy = "".join(f"BEGIN:VEVENT\nUID:busy{d}@test\nDTSTART:{(start + timedelta(days=d)).strftime('%Y%m%dT%H%M%S')}\n"
                   f"DTEND:{(start + timedelta(days=d, hours=3)).strftime('%Y%m%dT%H%M%S')}\nSUMMARY:Workshop\n"
                   "END:VEVENT\n" for d in range(5))
    calendar = tmp_path / "me.ics"
    calendar.write_text(f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{busy}END:VCALENDAR\n")
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, [
        _mail(1, "Can we meet next week?", "Hi, could we schedule a 30 min meeting next week to go over the "
                                           "budget? Let me know a time that suits you."),
        _mail(2, "Call about the contract", "Hello, I would like to set up a one hour call to discuss the "
                                            "contract renewal. When are you available?"),
        *newsgroup_messages(2),
    ])
    monkeypatch.setenv("PLAIT_MAILDIR", str(maildir))
    monkeypatch.setenv("PLAIT_CALENDAR", str(calendar))
    summary = Engine(load_workflow(BUNDLED / "meeting-requests.yml"), runtime).run()
    assert summary.done == 4 and summary.failed == 0, summary.errors
    out = runtime.settings.home / "output" / "meeting-requests"
    window = (start - timedelta(days=2), start + timedelta(days=30))
    proposals = read_calendar(out / "proposals.ics", *window, tz=start.tzinfo).events
    workshops = read_calendar(calendar, *window, tz=start.tzinfo).events
    # Both requests are planned (zero-shot labels can also take a newsgroup post listing events for one).
    assert {"Can we meet next week?", "Call about the contract"} <= {p.summary.split(" (")[0] for p in proposals}
    for p in proposals:  # proposed in free time only
        assert not any(w.start < p.end and p.start < w.end for w in workshops)
    drafts = list((out / "drafts").glob("*.eml"))
    assert len(drafts) == len(proposals) and all("Would " in read_text(d) for d in drafts)


def test_weekly_report_groups_notes_by_project_with_actions(tmp_path: Path, runtime: Runtime,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    notes = tmp_path / "Notes"
    for project, texts in {"apollo": lee_articles()[:2], "zephyr": lee_articles()[2:3]}.items():
        (notes / project).mkdir(parents=True)
        for i, text in enumerate(texts):
            (notes / project / f"note{i}.md").write_text(f"# Note {i}\n\n{text}\n\nPlease send the report by Friday.\n")
    monkeypatch.setenv("PLAIT_NOTES", str(notes))
    summary = Engine(load_workflow(BUNDLED / "weekly-report.yml"), runtime).run()
    assert (summary.done, summary.failed) == (3, 0), summary.errors
    report = read_text(next((runtime.settings.home / "output" / "weekly-report" / "reports").glob("week-*.md")))
    assert "## apollo (2)" in report and "## zephyr (1)" in report and ".png)" in report
    assert "to do: " in report and "send the report" in report
