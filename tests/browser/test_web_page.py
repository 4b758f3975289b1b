"""The web page in a real browser (Debian's Chromium, headless, driven by Playwright) against a real plait
server with the real packaged models: each flow a person goes through, end to end."""

from __future__ import annotations

import json
import re
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import Site, shot
from tests.corpora import lee_articles

pytestmark = [pytest.mark.model, pytest.mark.timeout(600)]


def _api(site: Site, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, site.url + path, headers=site.server.headers, timeout=300, **kw)
    r.raise_for_status()
    return r.json() if r.content else None


def _words(text: str) -> list[str]:
    """The words of a text, without the Markdown marks the page renders as formatting (list numbers too:
    an ordered list's numbers are drawn by the browser, not part of the text)."""
    return re.findall(r"[^\W\d_]+", text.lower())


def _index(site: Site, folder: Path, collection: str) -> None:
    job = _api(site, "POST", "/v1/index/add", json={"paths": [str(folder)], "collection": collection})
    for _ in range(600):
        job = _api(site, "GET", f"/v1/jobs/{job['id']}")
        if job["state"] in ("done", "failed"):
            break
        time.sleep(0.2)
    assert job["state"] == "done", job


@pytest.fixture(scope="module")
def news(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Forty real news articles in the index."""
    folder = tmp_path_factory.mktemp("news")
    for i, article in enumerate(lee_articles()[:40]):
        (folder / f"article-{i:02d}.txt").write_text(article, encoding="utf-8")
    _index(site, folder, "news")
    return folder


def test_signin_link_works_once_and_foreign_origins_are_refused(browser: Any, site: Site) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(site.url + "/")
    tab.wait_for_selector("text=Sign in to plait")
    shot(tab, "signin-needed")
    link = site.signin_url()
    tab.goto(link)
    tab.wait_for_selector("h1:text('Today')")
    cookie = next(c for c in context.cookies() if c["name"] == "plait_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # The page's own changes carry its token; a request from another origin with the same cookie does not.
    refused = tab.request.post(site.url + "/v1/conversations", data=json.dumps({}),
                               headers={"content-type": "application/json", "origin": "http://evil.example"})
    assert refused.status == 403
    other = browser.new_context().new_page()
    other.goto(link)  # spent
    assert "has been used or has expired" in other.content()
    context.close()


def test_chat_streams_and_stop_stops(page: Any, site: Site) -> None:
    page.goto(site.url + "/#/chat")
    page.fill("textarea[name=message]", "Name three fruits.")
    page.keyboard.press("Enter")
    # The model samples and the machine may be busy: wait for the answer to end, then say what ended it.
    page.wait_for_selector(".message.assistant", timeout=30_000)
    page.wait_for_selector(".messages[aria-busy=false]", timeout=200_000)
    errors = page.locator(".message.assistant .error")
    assert errors.count() == 0, errors.first.inner_text()
    shot(page, "chat")
    # The page shows the whole answer plait kept (the model samples, so its words are not fixed here).
    first_id = page.url.rsplit("/", 1)[-1]
    kept_answer = _api(site, "GET", f"/v1/conversations/{first_id}")["messages"][-1]["content"]
    shown = " ".join(page.inner_text(".message.assistant .body").split())
    if kept_answer.strip():
        assert _words(kept_answer) == _words(shown), (kept_answer, shown)
    else:  # a sampled answer may be empty: the page says so
        assert "no answer" in shown, shown
    # A long answer, stopped as soon as it starts streaming: the page says so and plait keeps what came.
    page.fill("textarea[name=message]", "Write a very long story about a dragon who learns to bake bread.")
    page.keyboard.press("Enter")
    second = page.locator(".message.assistant").nth(1)
    second.locator(".body :is(p, li)").first.wait_for(timeout=120_000)
    page.click("button:text('Stop')")
    second.locator("text=(stopped)").wait_for(timeout=30_000)
    conversation_id = page.url.rsplit("/", 1)[-1]
    for _ in range(50):
        kept = _api(site, "GET", f"/v1/conversations/{conversation_id}")["messages"]
        if len(kept) == 4:
            break
        time.sleep(0.2)
    assert kept[-1]["role"] == "assistant" and kept[-1]["stopped"] is True and kept[-1]["content"], kept


def test_ask_answers_with_citations_and_opens_the_passage(page: Any, site: Site, news: Path) -> None:
    page.goto(site.url + "/#/ask")
    page.fill("input[name=question]", "How many detainees remain on Christmas Island?")
    page.click("button:text('Ask')")
    page.wait_for_selector(".sources li", timeout=120_000)
    page.wait_for_selector(".result[aria-busy=false] .answer", timeout=120_000)
    assert "211" in page.inner_text(".answer")  # the fact, stated from the evidence
    # A citation in the answer opens its passage with the cited sentence marked.
    page.click(".answer button.cite")
    page.wait_for_selector(".passage mark.evidence")
    assert "211 detainees" in page.inner_text(".passage mark.evidence")
    assert page.locator(".evidence li").count() >= 1
    page.click(".sources li:first-child button")
    page.wait_for_selector(".passage blockquote mark")
    assert "Christmas" in page.inner_text(".passage blockquote")
    assert "article-" in page.inner_text(".passage code")
    shot(page, "ask")
    # A question the index cannot answer says so instead of making one up.
    page.fill("input[name=question]", "What is the boiling point of liquid nitrogen in kelvin?")
    page.click("button:text('Ask')")
    page.wait_for_selector("text=Not in your data", timeout=120_000)


def test_search_marks_matches(page: Any, site: Site, news: Path) -> None:
    page.goto(site.url + "/#/ask")
    page.fill("input[name=question]", "Christmas Island detainees")
    page.click("button:text('Search')")
    page.wait_for_selector(".hits li mark", timeout=60_000)
    assert "answers it" not in page.inner_text(".hits")  # words, not a question: nothing re-scored
    page.click(".hits li:first-child button")
    page.wait_for_selector(".passage blockquote")
    # A question: its results are re-scored by whether they answer it, and each says how likely.
    page.fill("input[name=question]", "How many detainees remain on Christmas Island?")
    page.click("button:text('Search')")
    page.wait_for_selector(".hits li:first-child small:has-text('answers it:')", timeout=60_000)
    assert "detainees" in page.inner_text(".hits li:first-child").lower()


def test_index_add_shows_progress_and_the_skipped_files(page: Any, site: Site,
                                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("mixed")
    for i, article in enumerate(lee_articles()[40:70]):
        (folder / f"story-{i:02d}.txt").write_text(article, encoding="utf-8")
    (folder / "photo.bin").write_bytes(bytes(range(256)) * 64)
    page.goto(site.url + "/#/index")
    page.fill("input[name=paths]", str(folder))
    page.fill("input[name=collection]", "mixed")
    page.click("form button:text('Add')")
    page.wait_for_selector(".progress-box progress", timeout=30_000)
    page.wait_for_selector("text=Done:", timeout=300_000)
    page.wait_for_selector(".skipped li >> text=photo.bin")
    assert "30 new" in page.inner_text(".progress-box")
    shot(page, "index")


def test_a_workflow_moves_through_its_items_and_a_failed_one_is_retried(page: Any, site: Site,
                                                                       tmp_path: Path) -> None:
    folder = site.home / "workflows"
    folder.mkdir(exist_ok=True)
    notes = tmp_path / "notes"
    notes.mkdir()
    for name in ("a", "b"):
        (notes / f"{name}.txt").write_text(f"Note {name}: the budget meeting moved to Friday afternoon.")
    (folder / "read-notes.yml").write_text(f"""
name: read-notes
trigger: {{type: manual}}
retry: {{attempts: 1}}
steps:
  - id: doc
    task: read
    with: {{path: "{notes}/{{{{ item.name }}}}.txt", within: ["{notes}"]}}
  - id: gist
    task: summarize
    with: {{text: "{{{{ doc.text }}}}", sentences: 1}}
  - sink: file
    with: {{path: "gists/{{{{ item.name }}}}.md", content: "{{{{ gist.text }}}}"}}
""")
    _api(site, "POST", "/v1/workflows/read-notes/enable")
    _api(site, "POST", "/v1/workflows/read-notes/run", json={"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                                                              "keys": ["a", "b", "c"]})
    page.goto(site.url + "/#/workflows/read-notes")
    page.wait_for_selector(".badge.done:text('2 done')", timeout=120_000)
    page.wait_for_selector(".failed li >> text=does not exist", timeout=60_000)
    shot(page, "workflows")
    (notes / "c.txt").write_text("Note c: the report is due on Monday.")
    page.click(".failed li button:text('Retry')")
    # The list of workflows and the open one refresh on their own: wait for the open one's failed list.
    page.wait_for_selector(".badge.done:text('3 done')", timeout=120_000)
    page.wait_for_selector(".failed li", state="detached", timeout=30_000)
    page.wait_for_selector(".outputs li >> text=gists/c.md")


def test_today_shows_the_inbox_digest_by_thread_and_a_label_can_be_corrected(page: Any, site: Site,
                                                                            tmp_path: Path) -> None:
    from plait.workflows.enabled import BUNDLED
    from tests.mailboxes import newsgroup_messages, write_maildir

    posts = newsgroup_messages(7, threading=True)
    reply = EmailMessage()
    reply["From"], reply["To"] = "Bo Berg <bo@example.org>", posts[0]["From"]
    reply["Subject"], reply["In-Reply-To"] = f"Re: {posts[0]['Subject']}", posts[0]["Message-ID"]
    reply["Message-ID"], reply["Date"] = "<reply-1@example.org>", posts[0]["Date"]
    reply.set_content("Could you please send me your notes on this by Friday?\n\n> " +
                      "\n> ".join(posts[0].get_content().splitlines()[:3]) + "\n")
    maildir = tmp_path / "Maildir"
    write_maildir(maildir, [*posts, reply])
    folder = site.home / "workflows"
    folder.mkdir(exist_ok=True)
    spec = (BUNDLED / "inbox-triage.yml").read_text().replace("${PLAIT_MAILDIR:-~/Mail/INBOX}", str(maildir))
    (folder / "inbox-triage.yml").write_text(spec)
    _api(site, "POST", "/v1/workflows/inbox-triage/enable")
    _api(site, "POST", "/v1/workflows/inbox-triage/run")
    for _ in range(600):
        if _api(site, "GET", "/v1/workflows/inbox-triage")["counts"].get("done", 0) == 8:
            break
        time.sleep(0.5)
    page.goto(site.url + "/#/today")
    page.wait_for_selector(".thread h3", timeout=60_000)
    assert "8 message(s)" in page.inner_text(".day-section")
    shot(page, "today-inbox")
    assert page.locator(".thread").count() == 7  # the reply is grouped with the message it answers
    reply_thread = page.locator(".thread", has_text="Bo Berg").inner_text()
    assert "2 new" in reply_thread and "send me your notes" in reply_thread
    first = page.locator(".thread select").first
    first.select_option("work")
    page.wait_for_selector("#announce:has-text('is work from now on')")
    assert _api(site, "GET", "/v1/workflows/inbox-triage/corrections")["counts"].get("work") == 1


def test_a_task_form_made_from_the_registry_runs(page: Any, site: Site) -> None:
    page.goto(site.url + "/#/tasks")
    page.click("a:text('summarize')")
    page.wait_for_selector("form.task-form textarea[name=text]")
    page.fill("textarea[name=text]", lee_articles()[0])
    page.fill("input[name=sentences]", "2")
    page.click("button:text('Run')")
    page.wait_for_selector(".result[aria-busy=false] p", timeout=120_000)
    assert len(page.inner_text(".result p").split()) > 5
    shot(page, "tasks-summarize")


def test_a_compression_report_shows_its_chart(page: Any, site: Site) -> None:
    from plait.compress.measure import Measurement
    from plait.compress.report import Report

    # The report's files are written by plait's own report writer; its numbers are given here, as measuring
    # real variants takes minutes and is compress's own tests' business.
    rows = [Measurement("minilm (original)", "original", 86.0, 12.0, 15.0, 80.0, "texts/s", {"mrr@10": 0.71}),
            Measurement("minilm-onnx-int8", "onnx-int8", 22.0, 5.5, 7.0, 180.0, "texts/s", {"mrr@10": 0.70})]
    report = Report("minilm", "embedder", "documents of your index", 120, rows)
    report.write(site.home / "reports" / "compress" / "minilm-20261203-090000")
    page.goto(site.url + "/#/models")
    page.wait_for_selector(".report figure img")
    # Loaded or failed, the image is complete; only a chart that arrived has a width.
    page.wait_for_function("document.querySelector('.report figure img').complete")
    assert page.evaluate("document.querySelector('.report figure img').naturalWidth") > 100
    shot(page, "models")


def test_every_view_renders(page: Any, site: Site) -> None:
    for view in ("today", "chat", "ask", "index", "workflows", "tasks", "models", "settings"):
        page.goto(f"{site.url}/#/{view}")
        page.wait_for_selector("main h1")
        page.wait_for_load_state("networkidle")
        shot(page, f"view-{view}")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{site.url}/#/today")
    page.wait_for_selector(".today > *")
    shot(page, "phone-today")


def test_keyboard_only_ask_and_open_a_citation(page: Any, site: Site, news: Path) -> None:
    page.goto(site.url + "/#/ask")
    page.wait_for_selector("input[name=question]:focus")
    page.keyboard.type("How many detainees remain on Christmas Island?")
    page.keyboard.press("Enter")
    page.wait_for_selector(".sources li button", timeout=120_000)
    page.wait_for_selector(".result[aria-busy=false] .answer", timeout=120_000)
    # Tab to the first source's button and open it with Enter.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('.sources') !== null"):
            break
    else:
        pytest.fail("the sources cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_selector(".passage h2:focus")
    assert "Christmas" in page.inner_text(".passage blockquote")
    shot(page, "keyboard-citation")
