"""The bundled workflows run as shipped (fake models here; tests/integration runs them on the real ones)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plait.runtime import Runtime
from plait.workflows.enabled import BUNDLED
from plait.workflows.engine import Engine
from plait.workflows.loader import load_workflow
from tests.corpora import lee_articles
from tests.homes import read_text


def test_documents_summaries_summarises_and_indexes_a_folder(tmp_path: Path, fake_models: Runtime,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.tasks.search import search

    docs = tmp_path / "Documents"
    (docs / "news").mkdir(parents=True)
    for i, article in enumerate(lee_articles()[:3]):
        (docs / "news" / f"article{i}.txt").write_text(article)
    (docs / "photo.jpg").write_bytes(b"not a document")
    monkeypatch.setenv("PLAIT_DOCUMENTS", str(docs))
    summary = Engine(load_workflow(BUNDLED / "documents-summaries.yml"), fake_models).run()
    assert (summary.added, summary.done, summary.failed) == (3, 3, 0), summary.errors
    pages = sorted((fake_models.settings.home / "output" / "documents-summaries" / "summaries" / "news").iterdir())
    assert [p.name for p in pages] == ["article0.txt.md", "article1.txt.md", "article2.txt.md"]
    assert read_text(pages[0]).startswith("# article0\n\nSource: ") and "\n- " in read_text(pages[0])
    first_words = " ".join(lee_articles()[0].split()[:6])
    assert search(first_words, k=3, mode="keyword", runtime=fake_models).hits


def test_feed_reader_ranks_entries_by_interest(tmp_path: Path, fake_models: Runtime,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    items = "".join(
        f"<item><title>{t}</title><link>https://example.org/{i}</link><guid>g{i}</guid>"
        f"<description>{d}</description></item>" for i, (t, d) in enumerate([
            ("Open source software release", "A new open source software release for local language models."),
            ("Football results", "The weekend football results and league table."),
            ("Privacy rules", "New rules protect privacy and personal data online."),
        ]))
    feed = tmp_path / "feed.xml"
    feed.write_text(f"<rss version='2.0'><channel><title>News</title>{items}</channel></rss>")
    monkeypatch.setenv("PLAIT_FEED", str(feed))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # charts are tested elsewhere; slow here
    summary = Engine(load_workflow(BUNDLED / "feed-reader.yml"), fake_models).run()
    assert (summary.added, summary.done, summary.failed) == (3, 3, 0), summary.errors
    digest = read_text(next((fake_models.settings.home / "output" / "feed-reader" / "feeds").glob("*.md")))
    order = [line for line in digest.splitlines() if line.startswith("- **")]
    assert len(order) == 3 and "Football" in order[-1]  # the entry matching no interest comes last
    assert "(closest interest: " in digest and "no chart: install matplotlib" in digest
