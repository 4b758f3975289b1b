"""Triggers: Maildir, mbox, folder (with file-system events), schedules on a controlled clock, calendars,
feeds; each remembers where it was, and a source that disappears is a clear error that loses nothing."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from plait.runtime import Runtime
from plait.workflows.clock import ManualClock
from plait.workflows.engine import Engine
from tests import workflow_helpers as h
from tests.homes import read_text
from tests.mailboxes import newsgroup_messages, write_maildir, write_mbox


@pytest.fixture(autouse=True)
def _reset() -> None:
    h.reset()


def _wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def test_maildir_messages_are_items_once_even_when_moved_to_cur(tmp_path: Path, fake_models: Runtime) -> None:
    box = tmp_path / "Maildir"
    keys = write_maildir(box, newsgroup_messages(5))
    wf = h.workflow(tmp_path, f"""
name: mail
trigger: {{type: maildir, path: {box}}}
steps:
  - id: line
    template: "{{{{ item.subject }}}} from {{{{ item.sender }}}}"
""")
    first = Engine(wf, fake_models).run()
    assert (first.added, first.done) == (5, 5)
    items = h.state(fake_models, "mail").items()
    assert [i.key for i in items] == [f"maildir:{k}" for k in keys]  # in the order they arrived
    item = items[0]
    assert item.data["message_id"] == "ng-0000@plait.test"
    assert item.data["subject"] and item.data["body"] and item.data["path"].startswith(str(box / "new"))
    # A mail client reads one (new/ → cur/ with flags), and a new message arrives.
    name = keys[0]
    os.rename(box / "new" / name, box / "cur" / f"{name}:2,S")
    write_maildir(box, newsgroup_messages(6)[5:])
    second = Engine(wf, fake_models).run()
    assert (second.added, second.done) == (1, 1)


def test_mbox_appends_are_new_items(tmp_path: Path, fake_models: Runtime) -> None:
    path = tmp_path / "mail.mbox"
    messages = newsgroup_messages(4)
    write_mbox(path, messages[:3])
    wf = h.workflow(tmp_path, f"name: box\ntrigger: {{type: mbox, path: {path}}}\nsteps:\n  - template: x\n")
    assert Engine(wf, fake_models).run().added == 3
    assert Engine(wf, fake_models).run().added == 0
    write_mbox(path, messages[3:])
    assert Engine(wf, fake_models).run().added == 1


def test_an_mbox_that_grew_is_read_on_from_the_last_scan_and_one_that_changed_is_read_whole(
        tmp_path: Path, fake_models: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    import mailbox

    from plait.workflows.triggers import mail

    path = tmp_path / "mail.mbox"
    messages = newsgroup_messages(6)
    write_mbox(path, messages[:3])
    # The messages are the bytes mailbox.mbox gives, so a message keeps its key however it was read.
    box = mailbox.mbox(str(path))
    assert list(mail.mbox_messages(path)) == [box.get_bytes(k) for k in box.iterkeys()]
    box.close()
    starts: list[int] = []
    real = mail.mbox_messages

    def recorded(file: Path, start: int = 0) -> Iterator[bytes]:
        starts.append(start)
        return real(file, start)

    monkeypatch.setattr(mail, "mbox_messages", recorded)
    wf = h.workflow(tmp_path, f"name: box\ntrigger: {{type: mbox, path: {path}}}\nsteps:\n  - template: x\n")
    state = h.state(fake_models, "box")
    assert Engine(wf, fake_models).run().added == 3
    size = path.stat().st_size
    write_mbox(path, messages[3:5])
    assert Engine(wf, fake_models).run().added == 2 and starts == [0, size]
    # The second message deleted (an expunge): the file is read whole again; nothing is added twice.
    box = mailbox.mbox(str(path))
    box.lock()
    box.remove(1)
    box.add(messages[5])
    box.flush()
    box.unlock()
    box.close()
    assert Engine(wf, fake_models).run().added == 1 and starts[-1] == 0
    assert state.counts()["done"] == 6


def test_items_older_than_since_are_skipped_not_lost(tmp_path: Path, fake_models: Runtime) -> None:
    path = tmp_path / "mail.mbox"
    write_mbox(path, newsgroup_messages(4))  # sent at 06:00, 06:01, 06:02 and 06:03
    wf = h.workflow(tmp_path, f"name: box\ntrigger: {{type: mbox, path: {path}}}\nsteps:\n  - template: x\n")
    state = h.state(fake_models, "box")

    def at(minute: int) -> datetime:
        return datetime(2024, 5, 2, 6, minute, tzinfo=UTC)

    first = Engine(wf, fake_models).run(since=at(2))
    assert (first.added, first.skipped, first.done) == (2, 2, 2)
    assert Engine(wf, fake_models).run().added == 0  # the trigger has moved past the older two
    assert (state.counts()["done"], state.counts()["skipped"]) == (2, 2)
    assert Engine(wf, fake_models).run(backfill=True, since=at(1)).done == 1  # the 06:01 one
    assert (state.counts()["done"], state.counts()["skipped"]) == (3, 1)
    assert Engine(wf, fake_models).run(backfill=True).done == 1
    assert (state.counts()["done"], state.counts()["skipped"]) == (4, 0)


def test_a_source_that_disappears_is_reported_and_recorded_items_still_finish(tmp_path: Path,
                                                                               fake_models: Runtime) -> None:
    box = tmp_path / "Maildir"
    write_maildir(box, newsgroup_messages(3))
    wf = h.workflow(tmp_path, f"""
name: gone
trigger: {{type: maildir, path: {box}}}
retry: {{attempts: 1}}
steps:
  - id: once
    task: test_flaky
    with: {{text: "{{{{ item.message_id }}}}"}}
""")
    first = Engine(wf, fake_models).run()
    assert first.failed == 3  # a transient error and a one-try policy: failed, with the error kept
    shutil.rmtree(box)
    assert h.state(fake_models, "gone").retry() == 3
    second = Engine(wf, fake_models).run()
    assert second.trigger_error and "does not exist" in second.trigger_error and str(box) in second.trigger_error
    assert second.done == 3 and second.status == "failed"  # processed from the recorded items
    assert h.state(fake_models, "gone").runs(1)[0].error == second.trigger_error


def test_folder_events_wake_the_workflow_and_changed_files_come_again(tmp_path: Path, fake_models: Runtime) -> None:
    inbox = tmp_path / "drop"
    inbox.mkdir()
    (inbox / "a.txt").write_text("first file")
    (inbox / "skip.bin").write_bytes(b"\0")
    wf = h.workflow(tmp_path, f"""
name: drop
trigger: {{type: folder, path: {inbox}, patterns: ["*.txt"], settle_seconds: 0.15, rescan_seconds: 3600}}
steps:
  - id: doc
    task: read
  - sink: file
    with: {{path: "{{{{ item.name }}}}.md", content: "{{{{ doc.text }}}}"}}
""")
    engine = Engine(wf, fake_models)
    thread = threading.Thread(target=lambda: engine.run(watch=True))
    thread.start()
    out = fake_models.settings.home / "output" / "drop"
    try:
        _wait_for(lambda: (out / "a.txt.md").exists())
        (inbox / "b.txt").write_text("second file")  # only the inotify event can wake it (rescan: 1 h)
        _wait_for(lambda: (out / "b.txt.md").exists())
        (inbox / "a.txt").write_text("first file, edited")
        _wait_for(lambda: read_text(out / "a.txt.md") == "first file, edited")
    finally:
        engine.stop()
        thread.join(10)
    assert h.state(fake_models, "drop").counts()["done"] == 3
    assert not thread.is_alive()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


SCHEDULE = """
name: daily
trigger: {{type: schedule, cron: "0 7 * * *", timezone: UTC, catch_up: {catch_up}}}
steps:
  - id: note
    template: "run for {{{{ item.scheduled_for }}}} missed {{{{ item.missed_count }}}}"
"""


def test_a_schedule_fires_on_time_on_a_controlled_clock(tmp_path: Path, fake_models: Runtime) -> None:
    wf = h.workflow(tmp_path, SCHEDULE.format(catch_up="once"))
    clock = ManualClock(_at("2024-05-01T06:00:00"))
    engine = Engine(wf, fake_models, clock=clock)
    thread = threading.Thread(target=lambda: engine.run(watch=True))
    thread.start()
    try:
        _wait_for(lambda: clock.sleepers > 0)  # first look: the schedule starts now, nothing fires
        assert h.state(fake_models, "daily").counts()["done"] == 0
        clock.set(_at("2024-05-01T06:59:59"))
        time.sleep(0.2)
        assert h.state(fake_models, "daily").counts()["done"] == 0  # not early
        clock.set(_at("2024-05-01T07:00:00"))
        _wait_for(lambda: h.state(fake_models, "daily").counts()["done"] == 1)
    finally:
        engine.stop()
        thread.join(10)
    item = h.state(fake_models, "daily").items()[0]
    assert item.key == "schedule:2024-05-01T07:00:00+00:00"
    assert item.data["fired_at"] == "2024-05-01T07:00:00+00:00" and item.data["missed"] is False


@pytest.mark.parametrize(("catch_up", "expected"), [("once", ["2024-05-04T07:00:00+00:00 missed 3"]),
                                                     ("all", ["2024-05-02T07:00:00+00:00 missed 3",
                                                              "2024-05-03T07:00:00+00:00 missed 3",
                                                              "2024-05-04T07:00:00+00:00 missed 3"]),
                                                     ("none", [])])
def test_missed_schedules_run_once_on_start_or_as_configured(tmp_path: Path, fake_models: Runtime, catch_up: str,
                                                              expected: list[str]) -> None:
    wf = h.workflow(tmp_path, SCHEDULE.format(catch_up=catch_up))
    clock = ManualClock(_at("2024-05-01T08:00:00"))
    Engine(wf, fake_models, clock=clock).run()  # first start: the schedule begins
    clock.set(_at("2024-05-04T08:00:00"))  # down for three days: 2nd, 3rd and 4th at 07:00 missed
    summary = Engine(wf, fake_models, clock=clock).run()
    st = h.state(fake_models, "daily")
    notes = [st.steps(i.id)["note"].output.removeprefix("run for ") for i in st.items()]
    assert notes == expected and summary.done == len(expected)
    assert Engine(wf, fake_models, clock=clock).run().added == 0  # handled once, not again


CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:standup@test
DTSTART:20240506T090000Z
DTEND:20240506T091500Z
RRULE:FREQ=DAILY;COUNT=3
SUMMARY:Stand-up
END:VEVENT
BEGIN:VEVENT
UID:review@test
DTSTART:20240507T140000Z
DTEND:20240507T150000Z
SUMMARY:{summary}
END:VEVENT
END:VCALENDAR
"""


def test_calendar_events_and_repetitions_are_items_and_edits_come_again(tmp_path: Path,
                                                                         fake_models: Runtime) -> None:
    ics = tmp_path / "cal.ics"
    ics.write_text(CALENDAR.format(summary="Design review"))
    wf = h.workflow(tmp_path, """
name: cal
trigger: {type: calendar, source: cal.ics, timezone: UTC, lookahead_days: 7}
steps:
  - template: "{{ item.summary }} at {{ item.start }}"
""")
    clock = ManualClock(_at("2024-05-05T12:00:00"))
    assert Engine(wf, fake_models, clock=clock).run().added == 4  # 3 stand-ups + the review
    ics.write_text(CALENDAR.format(summary="Design review (moved room)"))
    assert Engine(wf, fake_models, clock=clock).run().added == 1
    summaries = sorted(i.data["summary"] for i in h.state(fake_models, "cal").items())
    assert summaries == ["Design review", "Design review (moved room)", "Stand-up", "Stand-up", "Stand-up"]


RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>Test feed</title>
{items}</channel></rss>"""
ENTRY = "<item><title>{t}</title><link>https://example.org/{n}</link><guid>id-{n}</guid>" \
        "<description>&lt;p&gt;About {t}.&lt;/p&gt;</description></item>"


def test_feed_entries_with_conditional_get(tmp_path: Path, fake_models: Runtime) -> None:
    entries = [ENTRY.format(t="Rockets", n=1), ENTRY.format(t="Orbits", n=2)]
    calls: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(dict(request.headers))
        if request.url.path == "/gone.xml":
            return httpx.Response(404)
        if request.headers.get("if-none-match") == '"v2"':
            return httpx.Response(304)
        version = "v1" if len(entries) == 2 else "v2"
        return httpx.Response(200, text=RSS.format(items="".join(entries)), headers={"ETag": f'"{version}"'})

    wf = h.workflow(tmp_path, """
name: news
trigger: {type: feed, url: "https://feeds.test/rss.xml"}
network: {allow: [feeds.test]}
steps:
  - template: "{{ item.title }}: {{ item.summary }}"
""")
    transport = httpx.MockTransport(handler)
    assert Engine(wf, fake_models, http_transport=transport).run().added == 2
    entries.append(ENTRY.format(t="Moons", n=3))
    assert Engine(wf, fake_models, http_transport=transport).run().added == 1
    assert Engine(wf, fake_models, http_transport=transport).run().added == 0  # 304: nothing fetched
    assert calls[-1]["if-none-match"] == '"v2"'
    item = h.state(fake_models, "news").items()[2]
    assert item.data["title"] == "Moons" and item.data["summary"] == "About Moons." and item.key == "feed:id-3"
    gone = h.workflow(tmp_path, "name: gone\ntrigger: {type: feed, url: 'https://feeds.test/gone.xml'}\n"
                                "network: {allow: [feeds.test]}\nsteps:\n  - template: x\n", name="gone.yml")
    summary = Engine(gone, fake_models, http_transport=transport).run()
    assert summary.trigger_error == "feed https://feeds.test/gone.xml answered 404; is the URL still right?"


def test_start_now_skips_what_is_there_until_backfill(tmp_path: Path, fake_models: Runtime) -> None:
    box = tmp_path / "Maildir"
    write_maildir(box, newsgroup_messages(3))
    wf = h.workflow(tmp_path, f"""
name: later
trigger: {{type: maildir, path: {box}, start: now}}
steps:
  - template: "{{{{ item.subject }}}}"
""")
    first = Engine(wf, fake_models).run()
    assert (first.skipped, first.done) == (3, 0)
    write_maildir(box, newsgroup_messages(4)[3:])
    assert Engine(wf, fake_models).run().done == 1
    assert Engine(wf, fake_models).run(backfill=True).done == 3
    assert h.state(fake_models, "later").counts()["done"] == 4


def test_maildir_names_of_one_second_keep_their_arrival_order() -> None:
    from plait.workflows.triggers.mail import _arrival

    names = ["1796308032.M10056P26834Q294.vm", "1796308031.M999999P1Q1.vm", "1796308032.M7853P26834Q292.vm"]
    assert sorted(names, key=_arrival) == [names[1], names[2], names[0]]


def test_a_malformed_message_is_an_item_with_its_error_and_the_scan_goes_on(tmp_path: Path,
                                                                            fake_models: Runtime) -> None:
    import mailbox

    from tests.docfiles import BROKEN_PART_MAIL

    box = tmp_path / "Maildir"
    write_maildir(box, newsgroup_messages(1))
    mailbox.Maildir(str(box)).add(BROKEN_PART_MAIL)
    write_maildir(box, newsgroup_messages(2)[1:])
    wf = h.workflow(tmp_path, f"name: broken\ntrigger: {{type: maildir, path: {box}}}\nsteps:\n  - template: x\n")
    summary = Engine(wf, fake_models).run()
    assert summary.trigger_error is None and summary.added == 3
    broken = [i for i in h.state(fake_models, "broken").items() if i.data.get("parse_error")]
    assert len(broken) == 1 and "malformed mail message" in broken[0].data["parse_error"]


def test_a_read_step_reads_an_items_file_only_where_the_workflow_allows(tmp_path: Path, fake_models: Runtime) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("Note a: the budget meeting moved to Friday.")
    (tmp_path / "secret.txt").write_text("not for items")

    def run(name: str, with_: str, items: list[dict[str, str]]) -> object:
        wf = h.workflow(tmp_path, f"name: {name}\ntrigger: {{type: manual}}\nretry: {{attempts: 1}}\n"
                                  f"steps:\n  - id: doc\n    task: read\n    with: {with_}\n")
        engine = Engine(wf, fake_models)
        for i, item in enumerate(items):
            engine.submit(item, key=f"k{i}")
        return engine.run()

    named = f'{{path: "{notes}/{{{{ item.name }}}}.txt"}}'
    escaped = run("loose", named, [{"name": "../secret"}, {"name": "a"}])
    assert escaped.failed == 2 and "outside the trigger's folders" in escaped.errors[0]  # type: ignore[attr-defined]
    within = f'{{path: "{notes}/{{{{ item.name }}}}.txt", within: ["{notes}"]}}'
    allowed = run("within", within, [{"name": "a"}, {"name": "../secret"}])
    assert (allowed.done, allowed.failed) == (1, 1)  # type: ignore[attr-defined]
    state = h.state(fake_models, "within")
    assert state.steps(state.items("done")[0].id)["doc"].output["text"].startswith("Note a")
    assert run("author", f'{{path: "{tmp_path}/secret.txt"}}', [{}]).done == 1  # type: ignore[attr-defined]
