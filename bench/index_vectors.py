"""Which vector index for the personal index: exact numpy vs FAISS vs hnswlib vs USearch vs sqlite-vec.

    python bench/index_vectors.py [--n 100000]

100,000 unit vectors built from real MiniLM embeddings of the Lee sentences (each is the normalised sum
of four sentence embeddings plus a little noise, like chunks made of sentences); 200 queries are real
sentence embeddings. For each library: build time, query latency p50/p95 for the top 50 (what hybrid
search asks for), and recall of the exact top 50. Libraries that are not installed are listed as such;
only hnswlib is a plait dependency (extra ``index``), the others are installed for this comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench._common import percentile, write_results  # noqa: E402

K = 50


def main() -> None:
    import numpy as np
    from tests.corpora import lee_sentences

    from plait.tasks.embed import embed

    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    sentences = embed(list(lee_sentences()))
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(sentences), size=(args.n, 4))
    data = sentences[picks].sum(axis=1) + rng.normal(0, 0.02, (args.n, sentences.shape[1])).astype(np.float32)
    data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
    queries = sentences[rng.choice(len(sentences), 200, replace=False)]
    ids = np.arange(args.n)

    def exact(q: np.ndarray) -> np.ndarray:
        scores = data @ q
        part = np.argpartition(-scores, K)[:K]
        return part[np.argsort(-scores[part])]

    truth = [set(exact(q).tolist()) for q in queries]
    results: dict[str, Any] = {"vectors": args.n, "dimensions": int(data.shape[1]), "k": K, "threads": threads}

    def measure(name: str, build: Callable[[], Callable[[np.ndarray], Any]]) -> None:
        try:
            start = time.perf_counter()
            search = build()
            built = time.perf_counter() - start
        except ImportError as exc:
            results[name] = {"skipped": f"not installed ({exc.name})"}
            return
        times, recall = [], 0.0
        for q, t in zip(queries, truth, strict=True):
            start = time.perf_counter()
            found = search(q)
            times.append((time.perf_counter() - start) * 1000)
            recall += len({int(i) for i in found} & t) / K
        results[name] = {"build_s": round(built, 1), "p50_ms": round(percentile(times, 50), 2),
                         "p95_ms": round(percentile(times, 95), 2), "recall@50": round(recall / len(queries), 3)}
        print(name, results[name], file=sys.stderr)

    measure("numpy_exact", lambda: exact)

    def faiss_flat() -> Callable[[np.ndarray], Any]:
        import faiss

        faiss.omp_set_num_threads(threads)
        index = faiss.IndexFlatIP(data.shape[1])
        index.add(data)
        return lambda q: index.search(q[None], K)[1][0]

    measure("faiss_flat", faiss_flat)

    def hnsw() -> Callable[[np.ndarray], Any]:
        # plait's settings (plait.index.vectors)
        import hnswlib

        from plait.index.vectors import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M

        index = hnswlib.Index(space="ip", dim=data.shape[1])
        index.init_index(max_elements=args.n, M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
        index.set_num_threads(threads)
        index.add_items(data, ids)
        index.set_ef(max(HNSW_EF_SEARCH, 2 * K))
        return lambda q: index.knn_query(q, k=K)[0][0]

    measure("hnswlib", hnsw)

    def usearch(dtype: str) -> Callable[[], Callable[[np.ndarray], Any]]:
        def build() -> Callable[[np.ndarray], Any]:
            from usearch.index import Index

            index = Index(ndim=data.shape[1], metric="ip", dtype=dtype, connectivity=16, expansion_add=100,
                          expansion_search=128)
            index.add(ids, data, threads=threads)
            return lambda q: index.search(q, K).keys
        return build

    measure("usearch_f32", usearch("f32"))
    measure("usearch_i8", usearch("i8"))

    def sqlite_vec() -> Callable[[np.ndarray], Any]:
        import pysqlite3.dbapi2 as sqlite3  # this Python's sqlite3 cannot load extensions
        import sqlite_vec

        conn = sqlite3.connect(":memory:")
        conn.enable_load_extension(True)
        sqlite_vec.load(conn)
        conn.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{data.shape[1]}])")
        conn.executemany("INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                         ((int(i), data[i].tobytes()) for i in ids))
        return lambda q: [r[0] for r in conn.execute("SELECT rowid FROM v WHERE embedding MATCH ? AND k = ?",
                                                      (q.tobytes(), K))]

    measure("sqlite_vec", sqlite_vec)
    results["load_before"] = load_before
    results["load_after"] = os.getloadavg()
    write_results("index_vectors", results)


if __name__ == "__main__":
    main()
