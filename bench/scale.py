"""Beyond one machine: ingestion on Ray against the local path, and how the index grows (the sizing plan's data).

    flock /tmp/plait-bench.lock python bench/scale.py            # ~12 minutes on 2 cores
    python bench/scale.py --articles 60 --sizes 5000,10000        # a quick look

Parts, each measured in this run:

- ingest: the same corpus (Lee news articles and files of Lee sentences, tests/corpora.py) indexed into fresh
  homes by ``plait index add`` locally, on Ray with 1 worker and on Ray with 2 workers (a local Ray instance on
  127.0.0.1 with 2 CPUs). Both sides warm: the local model is loaded and has embedded a warm-up batch, the Ray
  workers are started, have loaded their model and embedded the same warm-up batch, before the clock starts.
  Same ``threads`` on both sides. Chunks, their order and their vectors asserted identical, bit for bit.
  Each side runs twice, in the order local, 1, 2, 2, 1, local (the machine is shared: its load changes).
  Two thread settings: ``threads=2`` (this machine's default: one worker fills both cores, two workers
  oversubscribe them, which is the overhead case) and ``threads=1`` (each worker one core, so 2 workers use
  what 1 cannot: the scaling case, as on a cluster where each worker has cores of its own).
- writer: the same ingestion with an embedder that costs nothing (vectors from a hash), so what is left is
  what the plait process itself does (reading, chunking, SQLite and the vector index): the ceiling of one
  writer, whatever the number of workers.
- growth: bench/index.py's scale part (synthetic chunks of real Lee sentences with real sentence vectors,
  searched through the real search path) at several sizes: bytes per passage, search latency p50/p95 by
  mode, the time to build the vector index; a power law fitted to latency (log-log least squares) and
  extrapolated to 10 million passages for docs/distributed.md.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench._common import make_home, peak_rss_mb, write_results  # noqa: E402

from plait.index.core import Index  # noqa: E402
from plait.runtime import Runtime  # noqa: E402
from plait.settings import load_settings  # noqa: E402

TARGET_PASSAGES = 10_000_000
WARMUP = ["A warm-up passage about the weather in Sydney.", "Another one, about a cricket match that ran late.",
          "The third warm-up text is about interest rates and the bank."] * 40
SNAPSHOT = ("SELECT d.source, c.position, c.text, v.vector FROM index_chunks c JOIN index_documents d "
            "ON d.id = c.document_id JOIN index_vectors v ON v.chunk_id = c.id ORDER BY d.source, c.position")


def runtime(home: Path, **settings: Any) -> Runtime:
    return Runtime(load_settings(home=home, **settings))


def snapshot(rt: Runtime) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in rt.store.query(SNAPSHOT)]


# -- ingest: local against Ray ------------------------------------------------------------------------

def ingest_local(base: Path, docs: Path, name: str, threads: int) -> tuple[dict[str, Any], Runtime]:
    rt = runtime(make_home(base, name), threads=threads)
    index = Index(rt)
    index.embedder().embed_many(WARMUP)  # loaded and warm, as the Ray workers will be
    report = index.add([docs])
    return {"seconds": round(report.seconds, 2), "chunks": report.chunks_added,
            "chunks_embedded": report.chunks_embedded,
            "passages_per_second": round(report.chunks_added / report.seconds, 1)}, rt


def ingest_ray(base: Path, docs: Path, name: str, threads: int, workers: int) -> tuple[dict[str, Any], Runtime]:
    import psutil

    from plait.distributed.ray_embedding import RayEmbedding

    rt = runtime(make_home(base, name), threads=threads)
    index = Index(rt)
    executor = RayEmbedding(index, workers=workers, worker_cpus=2 / workers)
    try:
        start = time.perf_counter()
        executor.submit(WARMUP).result()  # workers started, model loaded, warm
        startup = time.perf_counter() - start
        assert executor.pool is not None
        report = index.add([docs], executor=executor)
        worker_rss = [psutil.Process(p).memory_info().rss / 1e6 for p in executor.pool.pids]
    finally:
        executor.close()
    return {"seconds": round(report.seconds, 2), "chunks": report.chunks_added,
            "chunks_embedded": report.chunks_embedded,
            "passages_per_second": round(report.chunks_added / report.seconds, 1),
            "worker_cpus": 2 / workers, "worker_start_and_warmup_seconds": round(startup, 1),
            "worker_rss_mb": [round(m) for m in worker_rss]}, rt


SIDES = ("local", "ray_1_worker", "ray_2_workers")


def one_run(base: Path, docs: Path, side: str, threads: int, name: str) -> tuple[dict[str, Any], Runtime]:
    if side == "local":
        return ingest_local(base, docs, name, threads)
    return ingest_ray(base, docs, name, threads, 1 if side == "ray_1_worker" else 2)


def compare(base: Path, docs: Path, threads: int) -> dict[str, Any]:
    """Each side twice, in the order local, 1, 2, 2, 1, local, so a change of the machine's load during the
    part weighs on every side alike; each side's figure is the mean of its two runs."""
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    expected: list[tuple[Any, ...]] | None = None
    for i, side in enumerate(SIDES + SIDES[::-1]):
        result, rt = one_run(base, docs, side, threads, f"{side}-t{threads}-{i}")
        written = snapshot(rt)
        rt.close()
        expected = expected if expected is not None else written
        result["identical_chunks_and_vectors_to_local"] = written == expected
        assert written == expected, f"{side} wrote another index than the local path"
        result["load_1min"] = round(os.getloadavg()[0], 2)
        print(f"threads={threads} {side}: {result}", file=sys.stderr)
        runs[side].append(result)
    out: dict[str, Any] = {"threads": threads}
    local_rate = sum(r["passages_per_second"] for r in runs["local"]) / 2
    for side, results in runs.items():
        rate = sum(r["passages_per_second"] for r in results) / 2
        out[side] = {"passages_per_second": round(rate, 1), "vs_local": round(rate / local_rate, 3),
                     "runs": results}
    return out


# -- writer: the plait process's own ceiling ---------------------------------------------------------------

def _instant(spec: Any, settings: Any, models: Any) -> Any:
    import numpy as np

    from plait.models.base import Embedder, EmbedKind

    class Instant(Embedder):
        """384 dimensions from a hash of the text: the cost of embedding taken out."""

        dimensions = 384

        def __init__(self) -> None:
            self.spec = spec

        def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
            seeds = [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") for t in texts]
            return np.stack([np.random.default_rng(s).standard_normal(384, dtype=np.float32) for s in seeds])

    return Instant()


def writer_ceiling(base: Path, docs: Path) -> dict[str, Any]:
    from plait.models.loading import BACKENDS, register_backend
    from plait.models.spec import ModelSpec

    if "instant" not in BACKENDS:
        register_backend("instant", _instant)
    rt = runtime(make_home(base, "writer"), embed_model="instant")
    rt.catalog.add(ModelSpec(name="instant", backend="instant", capabilities=("embed",), source="instant"),
                   replace=True)
    report = Index(rt).add([docs])
    rt.close()
    return {"seconds": round(report.seconds, 2), "chunks": report.chunks_added,
            "passages_per_second": round(report.chunks_added / report.seconds, 1)}


# -- growth ----------------------------------------------------------------------------------------------

def fit_power(sizes: list[int], values: list[float]) -> tuple[float, float]:
    """value = a * size**b by least squares on logs: (a, b)."""
    xs, ys = [math.log(s) for s in sizes], [math.log(max(v, 1e-6)) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - b * mx), b


def growth(base: Path, sizes: list[int], queries: int) -> dict[str, Any]:
    from bench.index import scale

    points = []
    for n in sizes:
        folder = base / f"growth-{n}"
        folder.mkdir()
        start = time.perf_counter()
        point = scale(folder, n, queries=queries)
        point["part_seconds"] = round(time.perf_counter() - start, 1)
        print(f"growth {n}: {point}", file=sys.stderr)
        points.append(point)
    out: dict[str, Any] = {"points": points, "extrapolated_to": TARGET_PASSAGES}
    for mode in ("hybrid", "keyword", "vector"):
        for stat in ("p50_ms", "p95_ms"):
            a, b = fit_power(sizes, [p["plait"][mode][stat] for p in points])
            out[f"{mode}_{stat}"] = {"exponent": round(b, 3), "at_target": round(a * TARGET_PASSAGES ** b, 1)}
    bpc = [p["bytes_per_chunk"] for p in points]
    out["bytes_per_passage"] = bpc[-1]
    out["index_gb_at_target"] = round(bpc[-1] * TARGET_PASSAGES / 1e9, 1)
    vec_mb = points[-1]["vector_index_mb"] / points[-1]["chunks"]
    out["vector_index_gb_at_target"] = round(vec_mb * TARGET_PASSAGES / 1e3, 1)  # held in memory when searching
    a, b = fit_power(sizes, [max(p["vector_index_build_from_sqlite_seconds"], 0.1) for p in points])
    out["vector_index_build"] = {"exponent": round(b, 3), "hours_at_target": round(a * TARGET_PASSAGES ** b / 3600, 1)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=300, help="Lee articles in the corpus (at most 300)")
    parser.add_argument("--sentence-files", type=int, default=400, help="files of 6 Lee sentences each")
    parser.add_argument("--threads", default="2,1", help="thread settings to compare at")
    parser.add_argument("--sizes", default="10000,30000,100000", help="passages for the growth part")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tests.ray_helpers import write_corpus

    from plait.distributed.cluster import connect

    results: dict[str, Any] = {"load_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="plait-bench-scale-") as tmp:
        base = Path(tmp)
        docs = base / "docs"
        files = write_corpus(docs, articles=args.articles, sentences_per_file=6, sentence_files=args.sentence_files)
        start = time.perf_counter()
        ray = connect(cpus=2)  # a private instance on 127.0.0.1, as `--executor ray` starts without --address
        results["ray_start_seconds"] = round(time.perf_counter() - start, 1)
        try:
            results["corpus"] = {"files": files, "articles": args.articles, "sentence_files": args.sentence_files}
            results["ingest"] = [compare(base, docs, int(t)) for t in args.threads.split(",")]
        finally:
            ray.shutdown()
        results["writer_ceiling"] = writer_ceiling(base, docs)
        print(f"writer: {results['writer_ceiling']}", file=sys.stderr)
        results["load_mid"] = os.getloadavg()
        results["growth"] = growth(base, [int(s) for s in args.sizes.split(",")], args.queries)
    first = results["ingest"][0]
    results["ray_1_worker_vs_local"] = {f"threads_{r['threads']}": r["ray_1_worker"]["vs_local"]
                                        for r in results["ingest"]}
    results["ray_2_workers_vs_local"] = {f"threads_{r['threads']}": r["ray_2_workers"]["vs_local"]
                                         for r in results["ingest"]}
    results["target_ray_1_worker_vs_local"] = 0.8
    results["meets_target"] = all(r["ray_1_worker"]["vs_local"] >= 0.8 for r in results["ingest"])
    results["threads_default"] = first["threads"]
    results["load_after"] = os.getloadavg()
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_results("scale", results)


if __name__ == "__main__":
    main()
