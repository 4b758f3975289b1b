"""The personal index: retrieval quality, scale, incremental updates, crash safety and bad input.

    python bench/index.py                 # everything (~10 minutes on 2 cores, most of it the 100k part)
    python bench/index.py --parts known   # known-item retrieval only
    python bench/index.py --chunks 20000  # a smaller scale test

Parts (each reports its baseline side by side, measured in the same run):

- known: known-item search on the 300 Lee news articles. The query is an article's first sentence; the
  indexed text is the rest of it. MRR@10 and recall@10 for BM25, vector and hybrid search.
- incremental: 1,000 files made of Lee sentences. Ingest throughput; an unchanged re-run (time vs the
  first run, chunks re-embedded); then files deleted, edited, moved and copied: what is re-embedded, and
  that no search returns deleted or stale text.
- crash: ``plait index add`` in a subprocess killed with SIGKILL mid-run, then run again: no duplicates,
  keyword and vector indexes agree with SQLite, and the same content as an uninterrupted run.
- bad: a folder of unreadable, encrypted and corrupt PDFs, a huge file, binary files, an mbox with a
  broken entry, a file without read permission: skipped with reasons, the rest indexed.
- scale: 100,000 chunks synthesised from Lee sentences (texts are combinations of 3–6 real sentences;
  each chunk's vector is the normalised mean of its sentences' real embeddings, inserted in bulk), then
  hybrid queries through the real search path (query embedding, FTS5, HNSW, fusion, snippets): latency
  p50/p95 against a naive hybrid baseline (BM25 over every query term + exact matrix search), the time
  to build the vector index from SQLite, and the size on disk.
"""

from __future__ import annotations

import argparse
import io
import json
import mailbox
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench._common import make_home, peak_rss_mb, percentile, write_results  # noqa: E402
from tests.corpora import lee_articles, lee_sentences, split_sentences  # noqa: E402

from plait.index.core import Index  # noqa: E402
from plait.runtime import Runtime  # noqa: E402
from plait.security.keys import sqlite_key_for  # noqa: E402
from plait.settings import load_settings  # noqa: E402
from plait.store.database import connect  # noqa: E402


def runtime(home: Path) -> Runtime:
    return Runtime(load_settings(home=home))


# -- known-item retrieval -------------------------------------------------------------------------

def known_item(base: Path) -> dict[str, Any]:
    folder = base / "lee"
    folder.mkdir()
    queries: list[tuple[str, str]] = []
    for i, article in enumerate(lee_articles()):
        first = split_sentences(article)[0]
        rest = article[article.index(first) + len(first):].strip()
        path = folder / f"article-{i:03}.txt"
        path.write_text(rest, encoding="utf-8")
        queries.append((first, str(path)))
    rt = runtime(make_home(base, "home-known"))
    index = Index(rt)
    report = index.add([folder])
    from plait.tasks.search import search

    out: dict[str, Any] = {"articles": len(queries), "chunks": report.chunks_added,
                           "ingest_seconds": round(report.seconds, 2),
                           "ingest_chunks_per_second": round(report.chunks_added / report.seconds, 1)}
    for mode in ("keyword", "vector", "hybrid"):
        reciprocal, found, times = 0.0, 0, []
        for query, target in queries:
            start = time.perf_counter()
            hits = search(query, k=10, mode=mode, runtime=rt).hits  # type: ignore[arg-type]
            times.append(time.perf_counter() - start)
            ranks = [h.rank for h in hits if h.path == target]
            if ranks:
                reciprocal += 1 / ranks[0]
                found += 1
        out[mode] = {"mrr@10": round(reciprocal / len(queries), 4), "recall@10": round(found / len(queries), 4),
                     "query_ms_p50": round(percentile(times, 50) * 1000, 1)}
    best = max(out["keyword"]["mrr@10"], out["vector"]["mrr@10"])
    out["hybrid_vs_best_single_mrr"] = round(out["hybrid"]["mrr@10"] / best, 4)
    out["hybrid_at_least_best"] = out["hybrid"]["mrr@10"] >= best
    out["ask_threshold"] = relevance_check(rt)
    rt.close()
    return out


def relevance_check(rt: Runtime) -> dict[str, Any]:
    """Best-passage similarity for questions about the corpus and for unrelated ones (the ask threshold)."""
    from plait.tasks.ask import MIN_SIMILARITY
    from plait.tasks.search import search

    related = ["Why were people forced to leave their homes near Hill Top?",
               "What happened to the Hume Highway?", "Who won the cricket test match?",
               "What did the Reserve Bank decide about interest rates?",
               "What happened in the Middle East peace talks?", "What did Qantas announce?"]
    unrelated = ["How do I bake sourdough bread at home?", "What is the best way to learn the violin?",
                 "Which houseplants need little light?", "How do I fix a flat bicycle tyre?",
                 "What are the rules of chess castling?", "How long should I boil an egg?"]

    def best(q: str) -> float:
        hits = search(q, k=4, per_document=False, runtime=rt).hits
        return round(max((h.similarity or 0.0) for h in hits), 3) if hits else 0.0

    rel = [best(q) for q in related]
    unrel = [best(q) for q in unrelated]
    return {"threshold": MIN_SIMILARITY, "related_best": rel, "unrelated_best": unrel,
            "related_above": sum(s >= MIN_SIMILARITY for s in rel),
            "unrelated_below": sum(s < MIN_SIMILARITY for s in unrel)}


# -- incremental updates --------------------------------------------------------------------------

def marker(i: int, version: str = "a") -> str:
    return f"Reference code zq{i:04}{version}."


def file_text(i: int, sentences: list[str], version: str = "a", offset: int = 0) -> str:
    n = len(sentences)
    picked = [sentences[(i * 5 + j + offset) % n] for j in range(5)]
    return " ".join(picked) + " " + marker(i, version)


def make_files(folder: Path, count: int) -> None:
    sentences = list(lee_sentences())
    for i in range(count):
        sub = folder / f"group-{i // 100:02}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"note-{i:04}.txt").write_text(file_text(i, sentences), encoding="utf-8")


def incremental(base: Path, count: int = 1000) -> dict[str, Any]:
    from plait.tasks.search import search

    folder = base / "notes"
    make_files(folder, count)
    shutil.copytree(folder, base / "notes-pristine")
    rt = runtime(make_home(base, "home-incremental"))
    index = Index(rt)
    first = index.add([folder])
    # Baseline for ingest throughput: the embedding model alone on the same chunk texts, so the figure
    # shows what reading, chunking, storing and indexing add to the model's own time.
    texts = [r[0] for r in rt.store.query("SELECT text FROM index_chunks")]
    start = time.perf_counter()
    index.embedder().embed_many(texts, kind="document")
    embed_only = time.perf_counter() - start
    second = index.add([folder])
    out: dict[str, Any] = {
        "files": count,
        "first_run": {"seconds": round(first.seconds, 2), "chunks": first.chunks_added,
                      "chunks_embedded": first.chunks_embedded,
                      "chunks_per_second": round(first.chunks_added / first.seconds, 1),
                      "baseline_embedding_only_chunks_per_second": round(len(texts) / embed_only, 1),
                      "ingest_vs_embedding_only": round((first.chunks_added / first.seconds)
                                                        / (len(texts) / embed_only), 3)},
        "unchanged_rerun": {"seconds": round(second.seconds, 3), "chunks_embedded": second.chunks_embedded,
                            "files_read": second.new + second.changed,
                            "fraction_of_first_run": round(second.seconds / first.seconds, 4)},
    }

    rng = random.Random(7)
    files = sorted(folder.rglob("*.txt"))
    chosen = rng.sample(files, 130)
    deleted, edited, moved, copied = chosen[:50], chosen[50:100], chosen[100:120], chosen[120:130]
    sentences = list(lee_sentences())
    old_text = {p: p.read_text() for p in chosen}
    for p in deleted:
        p.unlink()
    for p in edited:
        i = int(p.stem.split("-")[1])
        p.write_text(file_text(i, sentences, version="b", offset=1234), encoding="utf-8")
    (folder / "moved").mkdir()
    moved_to = {}
    for p in moved:
        moved_to[p] = folder / "moved" / p.name
        shutil.move(p, moved_to[p])
    (folder / "copies").mkdir()
    for p in copied:
        shutil.copy(p, folder / "copies" / p.name)
    third = index.add([folder])
    out["after_changes"] = {
        "deleted": third.deleted, "changed": third.changed, "moved": third.moved, "copied": third.copied,
        "chunks_embedded": third.chunks_embedded, "chunks_reused": third.chunks_reused,
        "seconds": round(third.seconds, 2),
    }

    # No search may return deleted or stale text: every hit must be in its file's current text.
    current = {str(p): " ".join(p.read_text().split()) for p in folder.rglob("*.txt")}
    violations = []
    checked = 0
    for p in deleted + edited:
        i = int(p.stem.split("-")[1])
        for mode in ("keyword", "vector", "hybrid"):
            for query in (marker(i), split_sentences(old_text[p])[0]):
                for h in search(query, k=10, mode=mode, runtime=rt).hits:  # type: ignore[arg-type]
                    checked += 1
                    text = " ".join(h.text.split())
                    if h.path not in current or text not in current[h.path]:
                        violations.append({"query": query, "mode": mode, "path": h.path})
    new_found = sum(
        any(h.path == str(p) for h in search(marker(int(p.stem.split("-")[1]), "b"), k=3, mode="keyword",
                                           runtime=rt).hits)
        for p in edited)
    moved_found = sum(
        any(h.path == str(moved_to[p]) for h in search(marker(int(p.stem.split("-")[1])), k=3, mode="keyword",
                                                     runtime=rt).hits)
        for p in moved)
    out["after_changes"].update({"hits_checked": checked, "deleted_or_stale_hits": len(violations),
                                 "violations": violations[:5], "edited_found_by_new_text": new_found,
                                 "moved_found_at_new_path": moved_found})
    status = index.status()
    assert status.consistency is not None
    out["after_changes"]["consistent"] = status.consistency.consistent
    rt.close()
    return out


# -- crash safety ---------------------------------------------------------------------------------

CHILD = """
import sys
sys.path.insert(0, {src!r})
from pathlib import Path
from plait.index.core import Index
from plait.runtime import Runtime
from plait.settings import load_settings
Index(Runtime(load_settings(home=Path({home!r})))).add([{folder!r}])
"""


def crash(base: Path) -> dict[str, Any]:
    folder = base / "notes-pristine"
    clean_home = make_home(base, "home-clean")
    clean = Index(runtime(clean_home)).add([folder])
    home = make_home(base, "home-crash")
    db = home / "plait.db"
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(src=str(ROOT / "src"), home=str(home),
                                                                   folder=str(folder))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    committed = 0
    deadline = time.time() + 600
    while time.time() < deadline and child.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                with connect(db, sqlite_key_for(db), readonly=True) as conn:
                    committed = conn.execute("SELECT count(*) FROM index_chunks").fetchone()[0]
            except sqlite3.Error:
                continue
            if committed >= clean.chunks_added // 3:
                break
    killed = child.poll() is None
    if killed:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()
    rt = runtime(home)
    index = Index(rt)
    state = {r[0]: r[1] for r in rt.store.query("SELECT state, count(*) FROM index_files GROUP BY state")}
    rerun = index.add([folder])
    store = rt.store
    duplicates = store.query("SELECT count(*) FROM (SELECT document_id, position FROM index_chunks "
                             "GROUP BY document_id, position HAVING count(*) > 1)")[0][0]
    duplicate_docs = store.query("SELECT count(*) FROM (SELECT file_id, source FROM index_documents "
                                 "GROUP BY file_id, source HAVING count(*) > 1)")[0][0]
    texts = sorted(r[0] for r in store.query("SELECT text FROM index_chunks"))
    clean_rt = runtime(clean_home)
    clean_texts = sorted(r[0] for r in clean_rt.store.query("SELECT text FROM index_chunks"))
    consistency = index.check()
    fts_rows = store.query("SELECT count(*) FROM index_fts_docsize")[0][0]
    result = {
        "killed_with_sigkill": killed, "chunks_committed_before_kill": committed,
        "files_by_state_after_kill": state,
        "rerun": {"new": rerun.new, "changed": rerun.changed, "unchanged": rerun.unchanged,
                  "documents_kept": rerun.documents_kept, "chunks_embedded": rerun.chunks_embedded},
        "duplicate_chunks": duplicates, "duplicate_documents": duplicate_docs,
        "same_chunks_as_uninterrupted_run": texts == clean_texts,
        "chunks": len(texts), "fts_rows": fts_rows, "vector_index": consistency.indexed,
        "consistent": consistency.consistent and fts_rows == len(texts),
    }
    rt.close()
    clean_rt.close()
    return result


# -- bad input ------------------------------------------------------------------------------------

BAD_CHILD = """
import json, sys
sys.path.insert(0, {src!r})
from pathlib import Path
from plait.index.core import Index
from plait.runtime import Runtime
from plait.settings import load_settings
index = Index(Runtime(load_settings(home=Path({home!r}))))
report = index.add([{folder!r}])
status = index.status()
print(json.dumps({{
    "indexed": sorted(Path(f.path).name for f in index.files() if f.state == "indexed"),
    "skipped": {{Path(s.path).name: s.reason for s in status.skipped}},
    "partial": {{Path(s.path).name: s.reason for s in status.partial}},
    "consistent": status.consistency.consistent,
}}))
"""


def bad_input(base: Path) -> dict[str, Any]:
    import pypdf
    from tests.docfiles import PLAIN_MAIL, make_pdf

    folder = base / "bad"
    folder.mkdir()
    (folder / "good.txt").write_text("Quarterly numbers look good for the bakery.")
    (folder / "report.pdf").write_bytes(make_pdf(["Revenue of the bakery grew."]))
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["the secret plan"]))))
    writer.encrypt("password", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    (folder / "encrypted.pdf").write_bytes(buffer.getvalue())
    (folder / "corrupt.pdf").write_bytes(make_pdf(["this will be cut"])[:180])
    (folder / "scan.pdf").write_bytes(make_pdf([""]))
    (folder / "binary.txt").write_bytes(os.urandom(20000))
    (folder / "program.exe").write_bytes(os.urandom(2000))
    with open(folder / "huge.log", "wb") as fh:
        fh.truncate(300 * 1024 * 1024)  # sparse: 300 MB on paper
    box = mailbox.mbox(str(folder / "inbox.mbox"))
    box.add(PLAIN_MAIL)
    box.add(b"no headers here\n\nonly a broken body\n")
    box.add(PLAIN_MAIL.replace(b"Lunch", b"Dinner"))
    box.close()
    secret = folder / "secret.txt"
    secret.write_text("Nobody may read this.")
    os.chmod(secret, 0)
    command = [sys.executable, "-c", BAD_CHILD.format(src=str(ROOT / "src"), home=str(make_home(base, "home-bad")),
                                                      folder=str(folder))]
    if os.geteuid() == 0:
        # Root reads any file; inside a user namespace a file owned by an unmapped user is denied to it.
        os.chown(secret, 12345, 12345)
        command = ["unshare", "-r", *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        return {"error": out.stderr[-2000:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- scale ----------------------------------------------------------------------------------------

def scale(base: Path, chunks: int, queries: int = 200) -> dict[str, Any]:
    import numpy as np

    from plait.index.fusion import rrf
    from plait.index.keyword import fts_query
    from plait.index.records import metadata_json
    from plait.index.vectors import top_k
    from plait.tasks.search import search

    home = make_home(base, "home-scale")
    rt = runtime(home)
    index = Index(rt)
    embedder = index.embedder()
    sentences = list(lee_sentences())
    start = time.perf_counter()
    vectors = embedder.embed_many(sentences, kind="document")
    embed_seconds = time.perf_counter() - start
    rng = np.random.default_rng(0)
    per_doc = 10
    start = time.perf_counter()
    with rt.store.transaction() as conn:
        conn.execute("INSERT INTO index_collections (name) VALUES ('scale')")
        for d in range(chunks // per_doc):
            fid = conn.execute("INSERT INTO index_files (collection_id, path, size, mtime_ns, hash, state) "
                               "VALUES (1, ?, 0, 0, ?, 'indexed')", (f"/synthetic/doc-{d:06}.txt", f"s{d}")).lastrowid
            did = conn.execute("INSERT INTO index_documents (file_id, source, kind, title, date, metadata, hash) "
                               "VALUES (?, ?, 'txt', NULL, '2024-01-01', ?, ?)",
                               (fid, f"/synthetic/doc-{d:06}.txt", metadata_json({}), f"s{d}")).lastrowid
            for p in range(per_doc):
                picked = rng.integers(0, len(sentences), size=int(rng.integers(3, 7)))
                text = " ".join(sentences[i] for i in picked)
                v = vectors[picked].mean(axis=0)
                v /= np.linalg.norm(v)
                cid = conn.execute("INSERT INTO index_chunks (document_id, position, section, heading, context, "
                                   "text, embed_hash) VALUES (?, ?, 0, NULL, '', ?, ?)",
                                   (did, p, text, f"{d}-{p}")).lastrowid
                conn.execute("INSERT INTO index_vectors VALUES (?, ?)", (cid, v.astype("<f4").tobytes()))
    insert_seconds = time.perf_counter() - start
    rt.store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    start = time.perf_counter()
    opened = index.vectors().last_open
    build_seconds = time.perf_counter() - start
    assert opened is not None

    qs = [split_sentences(a)[0] for a in lee_articles()][:queries]
    search(qs[0], runtime=rt)  # warm caches
    modes: dict[str, Any] = {}
    for mode in ("hybrid", "keyword", "vector"):
        times = []
        for q in qs:
            t = time.perf_counter()
            search(q, k=10, mode=mode, runtime=rt)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t) * 1000)
        modes[mode] = {"p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1)}

    # Baseline: the same hybrid search done naively, BM25 over every query term and exact search over
    # the whole matrix (what a first implementation does), fused the same way.
    ids = np.array([r[0] for r in rt.store.query("SELECT chunk_id FROM index_vectors ORDER BY chunk_id")])
    matrix = np.frombuffer(b"".join(r[0] for r in rt.store.query(
        "SELECT vector FROM index_vectors ORDER BY chunk_id")), dtype="<f4").reshape(len(ids), -1)
    conn = rt.store.connection
    times = []
    for q in qs:
        t = time.perf_counter()
        qv = embedder.embed(q, kind="query")
        kw = [r[0] for r in conn.execute(
            "SELECT rowid, bm25(index_fts, 2.0, 1.0) AS s FROM index_fts WHERE index_fts MATCH ? ORDER BY s LIMIT 50",
            (fts_query(q),))]
        vec = [i for i, _ in top_k(ids, matrix @ qv, 50)]
        rrf([kw, vec])
        times.append((time.perf_counter() - t) * 1000)
    baseline = {"p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1)}

    # What the postings budget of keyword search costs in results: overlap of its top 10 with the top 10
    # of BM25 over every query term.
    from plait.index.keyword import keyword_search

    overlap = 0.0
    for q in qs:
        full = {r[0] for r in conn.execute(
            "SELECT rowid, bm25(index_fts, 2.0, 1.0) AS s FROM index_fts WHERE index_fts MATCH ? ORDER BY s LIMIT 10",
            (fts_query(q),))}
        budgeted = {h.chunk_id for h in keyword_search(conn, q, 10)}
        overlap += len(full & budgeted) / max(1, len(full))
    status = index.status(check=False)
    result = {
        "chunks": chunks,
        "sentence_embedding_seconds": round(embed_seconds, 1),
        "bulk_insert_chunks_per_second": round(chunks / insert_seconds, 0),
        "vector_index_build_from_sqlite_seconds": round(build_seconds, 1),
        "vector_index_kind": opened.kind,
        "queries": len(qs),
        "plait": modes,
        "baseline_naive_hybrid": baseline,
        "hybrid_p50_speedup_vs_baseline": round(baseline["p50_ms"] / modes["hybrid"]["p50_ms"], 2),
        "keyword_top10_overlap_with_unbudgeted_bm25": round(overlap / len(qs), 3),
        "target_hybrid_p50_ms": 50,
        "database_mb": round(status.database_bytes / 1e6, 1),
        "vector_index_mb": round(status.vector_bytes / 1e6, 1),
        "bytes_per_chunk": round((status.database_bytes + status.vector_bytes) / chunks),
    }
    rt.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="known,incremental,crash,bad,scale")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    parts = args.parts.split(",")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="plait-bench-index-") as tmp:
        base = Path(tmp)
        if "known" in parts:
            results["known_item"] = known_item(base)
            print(json.dumps(results["known_item"]), file=sys.stderr)
        if "incremental" in parts or "crash" in parts:
            results["incremental"] = incremental(base, args.files)
            print(json.dumps(results["incremental"]), file=sys.stderr)
        if "crash" in parts:
            results["crash"] = crash(base)
            print(json.dumps(results["crash"]), file=sys.stderr)
        if "bad" in parts:
            results["bad_input"] = bad_input(base)
            print(json.dumps(results["bad_input"]), file=sys.stderr)
        if "scale" in parts:
            results["scale"] = scale(base, args.chunks)
            print(json.dumps(results["scale"]), file=sys.stderr)
    results["load_after"] = os.getloadavg()
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_results("index" if set(parts) >= {"known", "incremental", "crash", "bad", "scale"}
                  else "index-" + "-".join(parts), results)


if __name__ == "__main__":
    main()
