"""What privacy costs: ingestion and search on an encrypted home against an unencrypted one, and redaction
latency per 1,000 words.

    python bench/security.py                  # both parts (~5 minutes on 2 cores)
    python bench/security.py --parts redact

Parts (each side by side in the same run, same inputs, same settings and threads, models warmed first):

- encryption: 299 Lee news articles and 200 newsgroup posts, as files, indexed with the default embedder
  into a fresh encrypted home (SQLCipher database, sealed vector files: plait's default) and a fresh home
  kept unencrypted, in alternating order over two rounds (the faster round of each side is kept); then
  300 queries (each article's first sentence) in keyword and hybrid mode, p50 and p95, and the time to
  open the saved vector index in a new process state. Ratios are encrypted / unencrypted. Whether both
  sides return the same hits is reported per mode: keyword search must agree exactly; vector and hybrid
  rankings may not, because the default int8 ONNX embedder's vectors depend on how chunks are batched
  (with a deterministic embedder both homes give identical results in every mode: a unit test checks it).
- redact: the labelled set of tests/pii_corpus.py (real news text with inserted personal data): time per
  1,000 words with Presidio's pattern recognizers alone (what logs use) and with spaCy's NER as well (what
  requests to remote models use), and the precision/recall per entity type on the same set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench._common import make_home, percentile, write_results  # noqa: E402
from tests.corpora import lee_articles, newsgroups, split_sentences  # noqa: E402

from plait.runtime import Runtime  # noqa: E402
from plait.settings import load_settings  # noqa: E402


def _corpus(folder: Path) -> list[tuple[str, str]]:
    """Files to index, and (query, file) pairs: an article's first sentence finds the rest of it."""
    folder.mkdir()
    queries = []
    for i, article in enumerate(lee_articles()):
        first = split_sentences(article)[0]
        path = folder / f"article-{i:03}.txt"
        path.write_text(article[article.index(first) + len(first):].strip(), encoding="utf-8")
        queries.append((first, str(path)))
    for i, post in enumerate(newsgroups()[:200]):
        (folder / f"post-{i:03}.txt").write_text(post.text, encoding="utf-8")
    return queries


def _side(base: Path, name: str, encrypted: bool, corpus: Path, queries: list[tuple[str, str]]) -> dict[str, Any]:
    from plait.index.core import Index
    from plait.security.keys import mark_plaintext
    from plait.tasks.search import search

    home = make_home(base, name)
    if not encrypted:
        mark_plaintext(home)
    rt = Runtime(load_settings(home=home))
    warm = base / f"warm-{name}"
    warm.mkdir()
    (warm / "w.txt").write_text("warming the embedder up before the timed run")
    Index(rt).add([warm], collection="warm")  # loads the model: not part of the timing
    start = time.perf_counter()
    report = Index(rt).add([corpus])
    ingest = time.perf_counter() - start
    results: dict[str, Any] = {"chunks": report.chunks_added, "ingest_seconds": round(ingest, 3),
                               "chunks_per_second": round(report.chunks_added / ingest, 1)}
    hits: dict[str, list[list[str]]] = {}
    for mode in ("keyword", "hybrid"):
        times, found = [], []
        for query, _ in queries:
            t0 = time.perf_counter()
            res = search(query, k=10, mode=mode, runtime=rt)  # type: ignore[arg-type]
            times.append(time.perf_counter() - t0)
            found.append([h.path for h in res.hits])
        hits[mode] = found
        results[mode] = {"p50_ms": round(percentile(times, 50) * 1000, 2),
                         "p95_ms": round(percentile(times, 95) * 1000, 2)}
    Index(rt).vectors().save()
    rt.close()
    rt = Runtime(load_settings(home=home))
    t0 = time.perf_counter()
    Index(rt).vectors().open()
    results["vector_index_open_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    rt.close()
    results["on_disk_bytes"] = sum(p.stat().st_size for p in home.rglob("*") if p.is_file() and "models" not in p.parts)
    results["_hits"] = hits
    return results


def encryption(base: Path) -> dict[str, Any]:
    corpus = base / "corpus"
    queries = _corpus(corpus)
    rounds: dict[str, list[dict[str, Any]]] = {"encrypted": [], "unencrypted": []}
    for r, order in enumerate((("unencrypted", "encrypted"), ("encrypted", "unencrypted"))):
        for side in order:
            rounds[side].append(_side(base, f"{side}-{r}", side == "encrypted", corpus, queries))
    best = {side: min(runs, key=lambda x: x["ingest_seconds"]) for side, runs in rounds.items()}
    same = {m: sum(a != b for a, b in zip(best["encrypted"]["_hits"][m], best["unencrypted"]["_hits"][m], strict=True))
            for m in ("keyword", "hybrid")}
    for side in best.values():
        side.pop("_hits")
    for runs in rounds.values():
        for run in runs:
            run.pop("_hits", None)
    enc, plain = best["encrypted"], best["unencrypted"]
    ratios = {"ingest_seconds": round(enc["ingest_seconds"] / plain["ingest_seconds"], 3),
              "keyword_p50": round(enc["keyword"]["p50_ms"] / plain["keyword"]["p50_ms"], 3),
              "hybrid_p50": round(enc["hybrid"]["p50_ms"] / plain["hybrid"]["p50_ms"], 3),
              "vector_index_open": round(enc["vector_index_open_ms"] / plain["vector_index_open_ms"], 3),
              "on_disk_bytes": round(enc["on_disk_bytes"] / plain["on_disk_bytes"], 3)}
    return {"files": 499, "queries": len(queries), "encrypted": enc, "unencrypted": plain,
            "ratio_encrypted_over_unencrypted": ratios, "queries_with_different_hits": same,
            "rounds": {k: [{"ingest_seconds": r["ingest_seconds"], "keyword_p50_ms": r["keyword"]["p50_ms"],
                            "hybrid_p50_ms": r["hybrid"]["p50_ms"]} for r in v] for k, v in rounds.items()}}


def redaction() -> dict[str, Any]:
    from tests.pii_corpus import labelled_set, score

    from plait.security.pii import ENTITIES, PATTERN_ENTITIES, PresidioDetector

    docs = labelled_set(120)
    words = sum(len(d.text.split()) for d in docs)
    out: dict[str, Any] = {"documents": len(docs), "words": words}
    for name, detector, entities in (("patterns", PresidioDetector(nlp=False), PATTERN_ENTITIES),
                                     ("patterns_and_ner", PresidioDetector(nlp=True), ENTITIES)):
        detector.detect(docs[0].text, entities)  # load (Presidio, spaCy) before timing
        per_doc, found = [], []
        start = time.perf_counter()
        for d in docs:
            t0 = time.perf_counter()
            found.append([(f.entity, f.start, f.end) for f in detector.detect(d.text, entities)])
            per_doc.append((time.perf_counter() - t0) / len(d.text.split()) * 1000)
        total = time.perf_counter() - start
        out[name] = {"ms_per_1000_words": round(total / words * 1e6, 1),
                     "ms_per_1000_words_p50_doc": round(percentile(per_doc, 50) * 1000, 1),
                     "ms_per_1000_words_p95_doc": round(percentile(per_doc, 95) * 1000, 1)}
        if name == "patterns_and_ner":
            natural = [[(f.entity, f.start, f.end) for f in detector.detect(d.original, entities)] for d in docs]
            out["precision_recall"] = score(docs, found, natural).per_type()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="encryption,redact")
    args = parser.parse_args()
    parts = args.parts.split(",")
    results: dict[str, Any] = {"load_before": os.getloadavg(), "threads": load_settings().threads}
    base = Path(tempfile.mkdtemp(prefix="plait-bench-security-"))
    try:
        if "encryption" in parts:
            results["encryption"] = encryption(base)
        if "redact" in parts:
            results["redact"] = redaction()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results["load_after"] = os.getloadavg()
    write_results("security", results)


if __name__ == "__main__":
    main()
