"""plan: reading task requests, reading real .ics calendars (recurring, broken, free/cancelled events),
scheduling around them, the .ics and agenda output, the CLI and bad input."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from plait.calendar import Event, read_calendar, write_calendar
from plait.errors import InputError
from plait.tasks.plan import PlanConfig, PlanTask, free_time, plan
from plait.tasks.plan_requests import WorkDay, parse_request, split_requests
from tests.cli import plait

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = dt.datetime(2026, 3, 2, 8, 0, tzinfo=BERLIN)  # Monday 2 March 2026, before work
WORK = WorkDay(dt.time(9), dt.time(17), frozenset(range(5)))
CONFIG = PlanConfig(timezone="Europe/Berlin", breaks=((dt.time(12), dt.time(13)),))

CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example Corp//Calendar 1.0//EN
BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:standup@example.com
DTSTAMP:20260201T120000Z
DTSTART;TZID=Europe/Berlin:20260302T090000
DURATION:PT30M
RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR
EXDATE;TZID=Europe/Berlin:20260303T090000
SUMMARY:Standup
END:VEVENT
BEGIN:VEVENT
UID:standup@example.com
RECURRENCE-ID;TZID=Europe/Berlin:20260304T090000
DTSTAMP:20260201T120000Z
DTSTART;TZID=Europe/Berlin:20260304T150000
DTEND;TZID=Europe/Berlin:20260304T153000
SUMMARY:Standup (moved)
END:VEVENT
BEGIN:VEVENT
UID:review@example.com
DTSTAMP:20260201T120000Z
DTSTART:20260302T090000Z
DTEND:20260302T103000Z
SUMMARY:Design review
END:VEVENT
BEGIN:VEVENT
UID:lunch-talk@example.com
DTSTAMP:20260201T120000Z
DTSTART:20260302T140000
DTEND:20260302T150000
SUMMARY:Floating-time talk
END:VEVENT
BEGIN:VEVENT
UID:focus@example.com
DTSTAMP:20260201T120000Z
DTSTART;TZID=Europe/Berlin:20260302T150000
DTEND;TZID=Europe/Berlin:20260302T160000
TRANSP:TRANSPARENT
SUMMARY:Maybe: webinar
END:VEVENT
BEGIN:VEVENT
UID:cancelled@example.com
DTSTAMP:20260201T120000Z
DTSTART;TZID=Europe/Berlin:20260302T160000
DTEND;TZID=Europe/Berlin:20260302T170000
STATUS:CANCELLED
SUMMARY:Cancelled 1:1
END:VEVENT
BEGIN:VEVENT
UID:holiday@example.com
DTSTAMP:20260201T120000Z
DTSTART;VALUE=DATE:20260306
DTEND;VALUE=DATE:20260307
SUMMARY:Day off
END:VEVENT
BEGIN:VEVENT
UID:broken-date@example.com
DTSTAMP:20260201T120000Z
DTSTART:2026-03-02 nine o'clock
DTEND:20260302T100000Z
SUMMARY:Broken date
END:VEVENT
BEGIN:VEVENT
UID:no-start@example.com
DTSTAMP:20260201T120000Z
SUMMARY:No start
END:VEVENT
BEGIN:VEVENT
UID:backwards@example.com
DTSTAMP:20260201T120000Z
DTSTART:20260302T150000Z
DTEND:20260302T140000Z
SUMMARY:Ends before it starts
END:VEVENT
END:VCALENDAR
""".replace("\n", "\r\n")


@pytest.fixture
def calendar_file(tmp_path: Path) -> Path:
    path = tmp_path / "work.ics"
    path.write_text(CALENDAR, encoding="utf-8")
    return path


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=BERLIN)


# --- requests -------------------------------------------------------------------------------------

def req(text: str) -> PlanTask:
    return parse_request(text, now=MONDAY, tz=BERLIN, work=WORK, default_duration=dt.timedelta(hours=1))


@pytest.mark.parametrize(("text", "title", "minutes", "priority", "deadline", "not_before"), [
    ("write the quarterly report, 3h, by Friday 15:00, high priority", "write the quarterly report", 180,
     "high", at(6, 15), None),
    ("call the bank tomorrow (20 min)", "call the bank", 20, "normal", at(3, 17), at(3, 9)),
    ("review Anna's slides for 1.5 hours before March 10", "review Anna's slides", 90, "normal", at(10, 17), None),
    ("tidy the shared drive, low priority", "tidy the shared drive", 60, "low", None, None),
    ("urgent: fix the login bug (1h30) by end of day", "fix the login bug", 90, "high", at(2, 17), None),
    ("prepare the demo for half a day due in 3 days", "prepare the demo", 240, "normal", at(5, 17), None),
    ("read the paper after Wednesday", "read the paper", 60, "normal", None, at(5, 9)),
    ("plan the offsite next week, takes a couple of hours", "plan the offsite", 120, "normal", None, at(9, 9)),
    ("p1 renew passport until 2026-03-20 10:00", "renew passport", 60, "high", at(20, 10), None),
    ("book flights on Thursday, 45 minutes", "book flights", 45, "normal", at(5, 17), at(5, 9)),
    ("write chapter two, 2 days, whenever", "write chapter two", 960, "low", None, None),
    ("answer e-mail for half an hour by eow", "answer e-mail", 30, "normal", at(6, 17), None),
])
def test_requests_are_read(text: str, title: str, minutes: int, priority: str, deadline: dt.datetime | None,
                           not_before: dt.datetime | None) -> None:
    task = req(text)
    assert task.title == title
    assert task.duration == dt.timedelta(minutes=minutes)
    assert task.priority == priority
    assert task.deadline == deadline
    assert task.not_before == not_before
    assert task.text == text


def test_default_duration_is_marked() -> None:
    assert req("water the plants").duration_given is False
    assert req("water the plants, 10 min").duration_given is True


def test_split_requests_handles_bullets_checkboxes_and_semicolons() -> None:
    text = "# my week\n- one\n* two\n1. three\n[ ] four\n\n• five\n"
    assert split_requests(text) == ["one", "two", "three", "four", "five"]
    assert split_requests("a 1h; b 2h;") == ["a 1h", "b 2h"]


# --- calendars ------------------------------------------------------------------------------------

def test_calendar_expands_recurrences_and_reports_broken_events(calendar_file: Path) -> None:
    cal = read_calendar(calendar_file, at(2, 0), at(9, 0), tz=BERLIN)
    standups = [e for e in cal.events if e.summary.startswith("Standup")]
    # Mon, (Tue excluded), Wed moved to 15:00, Thu, Fri
    assert [(e.start, e.end) for e in standups] == [
        (at(2, 9), at(2, 9, 30)), (at(4, 15), at(4, 15, 30)), (at(5, 9), at(5, 9, 30)), (at(6, 9), at(6, 9, 30))]
    by_name = {e.summary: e for e in cal.events}
    assert by_name["Design review"].start == at(2, 10)  # 09:00 UTC is 10:00 in Berlin
    assert by_name["Floating-time talk"].start == at(2, 14)  # floating: read in the person's zone
    assert not by_name["Maybe: webinar"].busy and not by_name["Cancelled 1:1"].busy
    assert by_name["Day off"].all_day and by_name["Day off"].end - by_name["Day off"].start == dt.timedelta(days=1)
    assert len(cal.problems) == 3
    joined = "\n".join(cal.problems)
    for name in ("Broken date", "No start", "Ends before it starts"):
        assert name in joined


@pytest.mark.parametrize(("content", "message"), [
    (b"", "empty"),
    (b"hello, this is not a calendar", "not an iCalendar file"),
    (b"BEGIN:VEVENT\r\nSUMMARY:x\r\nEND:VEVENT\r\n", "no VCALENDAR"),
])
def test_unreadable_calendars_are_clear_errors(content: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_calendar(content, at(2, 0), at(9, 0), tz=BERLIN)
    with pytest.raises(InputError, match="cannot read calendar"):
        read_calendar(Path("/nonexistent/cal.ics"), at(2, 0), at(9, 0), tz=BERLIN)


def test_written_calendar_reads_back(tmp_path: Path) -> None:
    events = [Event(at(2, 9), at(2, 10), "Write, report; part 1", uid="a@plait", description="line one\nline two"),
              Event(at(3, 14), at(3, 15, 30), "Call", uid="b@plait")]
    data = write_calendar(events)
    back = read_calendar(data, at(1, 0), at(9, 0), tz=BERLIN)
    assert back.problems == []
    assert [(e.start, e.end, e.summary, e.uid, e.description) for e in back.events] == \
        [(e.start, e.end, e.summary, e.uid, e.description) for e in events]


# --- scheduling -----------------------------------------------------------------------------------

def test_free_time_respects_hours_breaks_days_and_busy_events(calendar_file: Path) -> None:
    cal = read_calendar(calendar_file, at(2, 0), at(9, 0), tz=BERLIN)
    free = free_time(CONFIG, at(2, 8).astimezone(dt.UTC), at(9, 0).astimezone(dt.UTC), cal.events)
    monday = [(a.astimezone(BERLIN), b.astimezone(BERLIN)) for a, b in free if a.astimezone(BERLIN).day == 2]
    # 9:00-9:30 standup, 10:00-11:30 review, 12-13 break, 14-15 talk; webinar and cancelled 1:1 do not block.
    assert monday == [(at(2, 9, 30), at(2, 10)), (at(2, 11, 30), at(2, 12)), (at(2, 13), at(2, 14)),
                      (at(2, 15), at(2, 17))]
    assert not [a for a, _ in free if a.astimezone(BERLIN).day in (6, 7, 8)]  # day off, weekend


def test_plan_places_tasks_by_deadline_and_priority(calendar_file: Path) -> None:
    text = ("write the report, 3h, by Friday 15:00, high priority\n"
            "call the bank tomorrow (20 min)\n"
            "fix the login bug (2h) by end of day, urgent\n"
            "tidy the shared drive, low priority\n")
    result = plan(text, calendar_file, config=CONFIG, now=MONDAY)
    assert result.unscheduled == []
    blocks = {b.summary: b for b in result.blocks}
    bug = blocks["fix the login bug"]
    assert bug.end <= at(2, 17) and bug.end - bug.start == dt.timedelta(hours=2)
    assert blocks["call the bank"].start.date() == dt.date(2026, 3, 3)
    report = [b for b in result.blocks if b.task.title == "write the report"]
    assert sum((b.end - b.start for b in report), dt.timedelta()) == dt.timedelta(hours=3)
    assert all(b.end - b.start <= dt.timedelta(hours=2) for b in report)  # split into blocks of at most 2 h
    busy = [e for e in read_calendar(calendar_file, at(2, 0), at(16, 0), tz=BERLIN).events if e.busy]
    for block in result.blocks:
        local = block.start.astimezone(BERLIN)
        assert local.weekday() < 5 and dt.time(9) <= local.time() and block.end.astimezone(BERLIN).time() <= dt.time(17)
        assert not (block.start < at(local.day, 13) and at(local.day, 12) < block.end)  # lunch break
        for event in busy:
            assert not (block.start < event.end and event.start < block.end), (block, event)
    for a in result.blocks:  # no two blocks overlap
        for b in result.blocks:
            assert a is b or not (a.start < b.end and b.start < a.end)


def test_high_priority_wins_when_time_is_short() -> None:
    config = PlanConfig(timezone="Europe/Berlin", horizon_days=1, max_block_minutes=0)
    tasks = [PlanTask("low", dt.timedelta(hours=5), "low", deadline=at(2, 14)),
             PlanTask("high", dt.timedelta(hours=6), "high")]
    result = plan(tasks, config=config, now=MONDAY)
    assert [b.task.title for b in result.blocks] == ["high"]
    assert [u.task.title for u in result.unscheduled] == ["low"]
    assert "deadline" in result.unscheduled[0].reason


def test_deadline_order_fits_everything_when_it_can() -> None:
    config = PlanConfig(timezone="Europe/Berlin", horizon_days=1)
    tasks = [PlanTask("important later", dt.timedelta(hours=4), "high", deadline=at(2, 17)),
             PlanTask("due first", dt.timedelta(hours=4), "low", deadline=at(2, 13))]
    result = plan(tasks, config=config, now=MONDAY)
    assert result.unscheduled == []
    assert result.blocks[0].task.title == "due first" and result.blocks[-1].end <= at(2, 17)


def test_unschedulable_tasks_say_why() -> None:
    result = plan("renew passport by 2026-03-01\nwrite a book, 400 hours\n", config=CONFIG, now=MONDAY)
    reasons = {u.task.title: u.reason for u in result.unscheduled}
    assert "has already passed" in reasons["renew passport"]
    assert "not enough free working time" in reasons["write a book"]
    assert "Nothing could be scheduled" in result.agenda()


def test_daylight_saving_change_keeps_local_working_hours() -> None:
    # Europe/Berlin moves to summer time on Sunday 29 March 2026.
    config = PlanConfig(timezone="Europe/Berlin", horizon_days=7, max_block_minutes=0)
    tasks = [PlanTask(f"task {i}", dt.timedelta(hours=8), deadline=None) for i in range(3)]
    result = plan(tasks, config=config, now=dt.datetime(2026, 3, 26, 8, 0, tzinfo=BERLIN))
    for block in result.blocks:
        local_start, local_end = block.start.astimezone(BERLIN), block.end.astimezone(BERLIN)
        assert (local_start.time(), local_end.time()) == (dt.time(9), dt.time(17))
    assert [b.start.astimezone(BERLIN).day for b in result.blocks] == [26, 27, 30]


def test_outputs_ics_agenda_and_dict(calendar_file: Path) -> None:
    result = plan("write the report, 3h, by Friday\ncall the bank tomorrow 20 min", calendar_file,
                  config=CONFIG, now=MONDAY)
    back = read_calendar(result.to_ics(), at(1, 0), at(20, 0), tz=BERLIN)
    assert [(e.start, e.end, e.summary) for e in back.events] == [(b.start, b.end, b.summary) for b in result.blocks]
    assert len({e.uid for e in back.events}) == len(back.events)
    agenda = result.agenda()
    assert "Monday 02 March 2026" in agenda and "· Design review" in agenda
    assert "Calendar problems:" in agenda and "Broken date" in agenda
    data = json.loads(json.dumps(result.as_dict()))
    assert data["blocks"][0]["task"]["request"] and len(data["problems"]) == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"work_start": dt.time(18)}, "ends"),
    ({"work_days": "funday"}, "not a day of the week"),
    ({"breaks": ((dt.time(13), dt.time(12)),)}, "ends before it starts"),
    ({"horizon_days": 0}, "greater than or equal"),
    ({"unknown": 1}, "Extra inputs"),
])
def test_bad_config_is_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PlanConfig(**kwargs)  # type: ignore[arg-type]


def test_config_day_ranges_and_unknown_zone() -> None:
    assert PlanConfig(work_days="mon-wed, fri").work_days == ("mon", "tue", "wed", "fri")
    assert PlanConfig(work_days=["sat-mon"]).work_days == ("sat", "sun", "mon")
    with pytest.raises(ValidationError, match="unknown time zone"):
        PlanConfig(timezone="Mars/Olympus")


@pytest.mark.parametrize("text", ["", "   \n\n", "# only a comment\n"])
def test_empty_requests_are_a_clear_error(text: str) -> None:
    with pytest.raises(InputError, match="no tasks"):
        plan(text, config=CONFIG, now=MONDAY)


# --- CLI ------------------------------------------------------------------------------------------

def test_cli_plan_writes_ics_and_prints_agenda(capsys: pytest.CaptureFixture[str], calendar_file: Path,
                                               tmp_path: Path) -> None:
    out_file = tmp_path / "plan.ics"
    code, out, err = plait(capsys, "plan", "write the report, 3h, by Friday; call Bob tomorrow 15 min",
                           "-c", str(calendar_file), "-o", str(out_file), "--timezone", "Europe/Berlin",
                           "--now", "2026-03-02T08:00", "--break", "12:00-13:00")
    assert code == 0, err
    assert "write the report" in out and "call Bob" in out and "Broken date" in out
    assert len(read_calendar(out_file, at(1, 0), at(20, 0), tz=BERLIN).events) == 3  # report in 2 blocks + call
    code, out, _ = plait(capsys, "plan", "a task, 1h", "--json", "--timezone", "UTC", "--now", "2026-03-02T08:00")
    assert code == 0 and json.loads(out)["blocks"][0]["start"] == "2026-03-02T09:00:00+00:00"
    code, out, _ = plait(capsys, "plan", "a task, 1h", "--ics", "--timezone", "UTC", "--now", "2026-03-02T08:00")
    assert code == 0 and out.startswith("BEGIN:VCALENDAR")


@pytest.mark.parametrize(("args", "message"), [
    (["--start", "18:00", "x"], "ends"),
    (["--days", "funday", "x"], "not a day of the week"),
    (["--break", "noon", "x"], "not a break"),
    (["--now", "yesterday", "x"], "not a date and time"),
    (["-c", "/nonexistent.ics", "x"], "/nonexistent.ics does not exist"),
    (["--timezone", "Mars/Olympus", "x"], "unknown time zone"),
    (["  "], "no tasks"),
])
def test_cli_plan_bad_input_is_one_line(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, out, err = plait(capsys, "plan", *args)
    assert code != 0 and message in err and "Traceback" not in err


@pytest.mark.parametrize("module", ["icalendar", "recurring_ical_events"])
def test_missing_calendar_libraries_name_the_extra(monkeypatch: pytest.MonkeyPatch, calendar_file: Path,
                                                   module: str) -> None:
    import sys

    from plait.errors import MissingDependency

    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependency, match=r"plait\[plan\]"):
        read_calendar(calendar_file, at(2, 0), at(9, 0), tz=BERLIN)


def test_missing_dateparser_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from plait.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "dateparser", None)
    with pytest.raises(MissingDependency, match=r"plait\[plan\]"):
        req("call the bank by Friday")
