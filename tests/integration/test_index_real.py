"""The personal index with the real packaged models (minilm-q8 embeddings, SmolLM2 answers) on real text."""

from __future__ import annotations

import mailbox
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plait.index import make_filters, open_index
from plait.runtime import Runtime
from plait.security.keys import sqlite_key_for
from plait.store.database import connect
from plait.tasks.ask import ask_stream
from plait.tasks.search import search
from tests.corpora import lee_articles, newsgroups, split_sentences

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]


def lee_folder(root: Path, count: int) -> list[tuple[str, Path]]:
    """Articles without their first sentence, and those first sentences as queries."""
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i, article in enumerate(lee_articles()[:count]):
        first = split_sentences(article)[0]
        path = root / f"article-{i:03}.txt"
        path.write_text(article[article.index(first) + len(first):].strip(), encoding="utf-8")
        out.append((first, path))
    return out


def newsgroup_mbox(path: Path, count: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.mbox(str(path))
    for post in newsgroups()[:count]:
        box.add(post.text.encode("utf-8"))
    box.close()


def test_real_text_search_and_answers(runtime: Runtime, tmp_path: Path) -> None:
    queries = lee_folder(tmp_path / "news", 40)
    newsgroup_mbox(tmp_path / "mail" / "usenet.mbox", 40)
    index = open_index(runtime)
    report = index.add([tmp_path / "news"], collection="news")
    assert report.new == 40 and report.chunks_embedded == report.chunks_added > 40
    mail = index.add([tmp_path / "mail"], collection="mail")
    assert mail.documents_added == 40 and not mail.skipped

    # Known item: an article's first sentence finds the rest of it.
    reciprocal = {"keyword": 0.0, "vector": 0.0, "hybrid": 0.0}
    for mode in reciprocal:
        for query, path in queries:
            hits = search(query, k=10, mode=mode, filters=make_filters(collections=["news"]),  # type: ignore[arg-type]
                          runtime=runtime).hits
            ranks = [h.rank for h in hits if h.path == str(path)]
            reciprocal[mode] += 1 / ranks[0] if ranks else 0.0
    mrr = {mode: total / len(queries) for mode, total in reciprocal.items()}
    assert mrr["hybrid"] >= 0.6 and mrr["vector"] >= 0.5 and mrr["keyword"] >= 0.5, mrr

    # Mail: metadata filters and snippets.
    post = newsgroups()[3]
    sender = post.sender.split("@")[0].split()[-1].strip("<(\"'")
    hits = search(post.subject, k=5, filters=make_filters(sender=sender, kinds=["email"]), runtime=runtime).hits
    assert hits and all(sender.lower() in (h.sender or "").lower() for h in hits)
    assert any(h.snippet.highlights for h in hits)

    # Ask: a question about an article is answered from it, with numbered sources; an unrelated one is not.
    stream = ask_stream("What closed the Hume Highway near Goulburn?", runtime=runtime)
    assert stream.found and str(queries[0][1]) in [s.path for s in stream.sources]
    pieces = [d.text for d in stream]
    answer = stream.answer
    assert len(pieces) > 1 and answer.text  # streamed
    assert all(1 <= n <= len(answer.sources) for n in answer.citations)
    assert answer.attributions and all(a.source is None or 1 <= a.source <= len(answer.sources)
                                       for a in answer.attributions)
    unrelated = ask_stream("How long should I boil an egg for a soft yolk?", runtime=runtime)
    assert not unrelated.found and "don't know" in unrelated.answer.text


CHILD = """
import sys
sys.path.insert(0, {src!r})
from plait.index import open_index
open_index().add([{folder!r}])
"""


def test_kill_9_during_ingestion_then_rerun_is_consistent(runtime: Runtime, plait_home: Path, tmp_path: Path) -> None:
    # 300 articles are several embedding flushes (FLUSH_CHUNKS), so the kill lands between commits even
    # on a fast machine.
    folder = tmp_path / "news"
    total = len(lee_folder(folder, 300))
    db = plait_home / "plait.db"
    env = {**os.environ, "PLAIT_HOME": str(plait_home)}
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(src=str(ROOT / "src"), folder=str(folder))],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    committed = 0
    deadline = time.time() + 300
    while time.time() < deadline and child.poll() is None and committed < 20:
        time.sleep(0.1)
        try:
            with connect(db, sqlite_key_for(db), readonly=True) as conn:
                committed = conn.execute("SELECT count(*) FROM index_chunks").fetchone()[0]
        except sqlite3.Error:
            continue
    assert child.poll() is None, "ingestion finished before it could be killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert committed >= 20

    index = open_index(runtime)
    rerun = index.add([folder])
    # committed documents were recognised, the rest done now
    assert rerun.unchanged + rerun.documents_kept >= 1
    assert rerun.unchanged < total, "the kill landed after every document was committed"
    store = runtime.store
    assert store.query("SELECT count(*) FROM index_files WHERE state = 'indexed'")[0][0] == total
    assert store.query("SELECT count(*) FROM index_documents")[0][0] == total
    assert not store.query("SELECT document_id, position FROM index_chunks GROUP BY document_id, position "
                           "HAVING count(*) > 1")
    # each document's chunks are numbered 0..n-1: none lost, none doubled
    assert not store.query("SELECT document_id FROM index_chunks GROUP BY document_id "
                           "HAVING max(position) + 1 != count(*)")
    consistency = index.check()
    chunks = store.query("SELECT count(*) FROM index_chunks")[0][0]
    assert consistency.consistent and consistency.indexed == chunks
    assert rerun.chunks_embedded <= chunks - committed  # what was committed before the kill was not embedded again
    assert store.query("SELECT count(*) FROM index_fts_docsize")[0][0] == chunks
