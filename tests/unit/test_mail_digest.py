"""The morning digest of mail: threads, what needs the person first, JSON for the page; corrections."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from plait.errors import InputError
from plait.runtime import Runtime
from plait.workflows.corrections import correct
from plait.workflows.engine import Engine
from tests import workflow_helpers as h
from tests.homes import read_text

DIGEST = """name: mail
trigger: {type: manual}
vars:
  labels: {urgent: needs an answer today, work: work, newsletter: news}
steps:
  - id: digest
    sink: mail-digest
    with:
      path: "digest/{period}"
      timezone: UTC
      day_starts: "07:00"
      title: "Morning {period}"
      time: "{{ item.date }}"
      label: item.cls
      about: item.gist
      asks: item.asks
      dates: item.dates
"""
DAY = datetime(2024, 5, 2, 8, 0, tzinfo=UTC)


def _cls(label: str | None, p: float, why: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"label": label, "scores": [{"label": label or "work", "probability": p}], "why": list(why)}


def _mail(n: int, subject: str, cls: dict[str, Any], *, day: int = 0, refs: str = "", **extra: Any) -> dict[str, Any]:
    return {"subject": subject, "sender": f"Person {n} <p{n}@example.org>", "message_id": f"m{n}@x",
            "in_reply_to": refs.split()[-1] if refs else "", "references": refs, "cls": cls,
            "gist": extra.pop("gist", f"gist of {n}"), "asks": extra.pop("asks", []), "dates": extra.pop("dates", []),
            "date": (DAY + timedelta(days=day, minutes=n)).isoformat(), **extra}


def _run(tmp_path: Path, rt: Runtime, items: list[dict[str, Any]], start: int = 0) -> None:
    engine = Engine(h.workflow(tmp_path, DIGEST), rt)
    for i, item in enumerate(items, start):
        engine.submit(item, key=f"k{i}")
    assert engine.run().failed == 0


def test_threads_sorted_by_what_needs_the_person_with_changes_since_yesterday(tmp_path: Path,
                                                                             fake_models: Runtime) -> None:
    _run(tmp_path, fake_models, [_mail(1, "Budget 2025 planning", _cls("work", 0.8), day=-1)])
    _run(tmp_path, fake_models, [
        _mail(2, "Re: Budget 2025 planning", _cls("work", 0.7), refs="m1@x", answers="Person 1",
              asks=[{"text": "Can you send the figures by Friday?", "action": "send the figures by Friday",
                     "owner": "you", "due": "2024-05-03"}, {"text": "I will check.", "owner": "I"}]),
        _mail(3, "Weekly news <script>alert(1)</script>", _cls("newsletter", 0.9)),
        _mail(4, "Server down", _cls("urgent", 0.97, ("down", "server"))),
        _mail(5, "Something", _cls(None, 0.4)),
    ], start=1)
    out = fake_models.settings.home / "output" / "mail" / "digest"
    today = json.loads(read_text(out / "2024-05-02.json"))
    assert json.loads(read_text(out / "latest.json")) == today
    needs = [t["need"] for t in today["threads"]]
    assert needs == ["urgent", "asks", "unsure", "newsletter"]
    urgent, budget, unsure, _ = today["threads"]
    assert urgent["why"] == ["down", "server"] and urgent["from"] == ["Person 4"]
    assert budget["since_previous"] == "1 new reply since yesterday (1 before)" and budget["answers"] == ["Person 1"]
    assert [a["action"] for a in budget["asks"]] == ["send the figures by Friday"]  # the sender's own plan is no ask
    assert budget["due"] == "2024-05-03" and unsure["unsure"] and unsure["label"] == "unsure"
    md = read_text(out / "2024-05-02.md")
    assert md.startswith("# Morning 2024-05-02\n\n4 message(s) in 4 thread(s)")
    assert "## Urgent (1)" in md and "urgent 0.97 — because of: “down”, “server”" in md
    assert "Asks: you: send the figures by Friday (by 2024-05-03)" in md and "· unsure ·" in md
    page = read_text(out / "2024-05-02.html")
    assert "<script>alert" not in page and "&lt;script&gt;" in page


def test_a_weekly_digest_says_what_changed_since_last_week(tmp_path: Path, fake_models: Runtime) -> None:
    weekly = h.workflow(tmp_path, DIGEST.replace('day_starts: "07:00"', 'day_starts: "07:00"\n      period: weekly'))
    mails = [("Budget 2025 planning", -7, ""), ("Re: Budget 2025 planning", 0, "m0@x")]
    for n, (subject, day, refs) in enumerate(mails):
        engine = Engine(weekly, fake_models)
        engine.submit(_mail(n, subject, _cls("work", 0.8), day=day, refs=refs), key=f"k{n}")
        assert engine.run().failed == 0
    week = json.loads(read_text(fake_models.settings.home / "output" / "mail" / "digest" / "2024-W18.json"))
    assert week["previous_period"] == "2024-W17"
    assert week["threads"][0]["since_previous"] == "1 new reply since last week (1 before)"


def test_thread_links_are_only_web_or_relative_links(tmp_path: Path, fake_models: Runtime) -> None:
    engine = Engine(h.workflow(tmp_path, DIGEST + '      link: "{{ item.url }}"\n'), fake_models)
    engine.submit(_mail(1, "Evil", _cls("work", 0.8), url="javascript:alert(1)"), key="k0")
    engine.submit(_mail(2, "Good", _cls("work", 0.8), url="https://example.org/m/2"), key="k1")
    assert engine.run().failed == 0
    out = fake_models.settings.home / "output" / "mail" / "digest"
    md, page = read_text(out / "2024-05-02.md"), read_text(out / "2024-05-02.html")
    assert "javascript:" not in md + page and "- **Evil**" in md
    assert "[Good](https://example.org/m/2)" in md and "href='https://example.org/m/2'" in page


def test_a_correction_is_saved_where_the_classifier_reads_it(tmp_path: Path, fake_models: Runtime) -> None:
    _run(tmp_path, fake_models, [_mail(1, "Team offsite", _cls(None, 0.3), body="Shall we book the venue?")])
    wf = h.workflow(tmp_path, DIGEST)
    done = correct(fake_models.store, wf, fake_models.settings.home, "k0", "work")
    path = Path(done.path)
    assert path.parent.name == "work" and read_text(path) == "Team offsite\n\nShall we book the venue?\n"
    assert done.counts == {"work": 1} and not done.tune
    moved = correct(fake_models.store, wf, fake_models.settings.home, "k0", "newsletter")
    assert not path.exists() and moved.counts == {"newsletter": 1, "work": 0}
    for key, label, problem in [("k0", "spam", "not one of"), ("nope", "work", "no item"),
                                ("k0", "../x", "not one of")]:
        with pytest.raises(InputError, match=problem):
            correct(fake_models.store, wf, fake_models.settings.home, key, label)


def test_today_routes_serve_the_digest_and_take_corrections(tmp_path: Path, fake_models: Runtime) -> None:
    pytest.importorskip("fastapi")
    import fastapi
    from fastapi.testclient import TestClient

    from plait.workflows.today_router import today_router

    folder = fake_models.settings.home / "workflows"
    folder.mkdir()
    (folder / "mail.yml").write_text(DIGEST)
    _run(folder, fake_models, [_mail(1, "Server down", _cls("urgent", 0.95, ("down",)))])
    app = fastapi.FastAPI()
    app.state.ctx = SimpleNamespace(runtime=fake_models)
    app.include_router(today_router())
    http = TestClient(app)
    today = http.get("/v1/workflows/mail/digest").json()
    assert today["threads"][0]["need"] == "urgent"
    assert http.get("/v1/workflows/mail/digest?period=2024-05-02").json() == today
    assert http.get("/v1/workflows/mail/digest?period=../../x").status_code == 422
    assert http.get("/v1/workflows/nope/digest").status_code == 404
    key = today["threads"][0]["messages"][0]["key"]
    answer = http.post("/v1/workflows/mail/corrections", json={"key": key, "label": "work"})
    assert answer.status_code == 200 and answer.json()["counts"] == {"work": 1}
    assert http.post("/v1/workflows/mail/corrections", json={"key": key, "label": "x"}).status_code == 422
    assert http.get("/v1/workflows/mail/corrections").json()["counts"] == {"work": 1}
