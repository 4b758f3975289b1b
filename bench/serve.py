"""Benchmark: plait's server against llama-cpp-python's own OpenAI server, micro-batching on and off,
the cache, and a 60-second mixed load from a second process. Everything on 127.0.0.1.

    python bench/serve.py                 # everything (about 4 minutes on 2 cores)
    python bench/serve.py --quick         # fewer requests and a 15-second mixed load

1. Generation (SmolLM2-135M Q4_1 GGUF, n_ctx 2048, the same threads): plait (`plait serve`) and
   `python -m llama_cpp.server` (with --interrupt_requests False, so a new request waits instead of
   cutting off the one being answered), both running, on their own ports; streamed chat completions
   with greedy decoding and the same prompts, at 1 and at 4 concurrent clients, in rounds that
   alternate which server goes first (the machine is shared: its load changes during a run):
   generated tokens/s and time to first token p50/p95, measured by the client.
2. Embeddings: 32 concurrent clients, each sending single-text requests with texts never sent before
   (so no cache hit), against plait with micro-batching on (batch_max 64) and off (1); with the default
   minilm-q8 (int8 ONNX) and with minilm (PyTorch fp32, where a batch costs much less than its texts
   one by one).
3. Cache: the same task request (/v1/sentiment, /v1/summarize) repeated: latency of the cached answers.
4. Mixed load: a second process sends chat, embeddings, classify and search requests for 60 s while
   this one samples the server's resident memory; counts responses by status.

Results go to bench/results/serve.json. Servers run as subprocesses with their own PLAIT_HOME; the
minilm-q8 model is built once into $PLAIT_BENCH_HOME/models (default /tmp/plait-bench-serve).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentile, write_results  # noqa: E402

PROMPTS = [
    "Write two sentences about the history of tea.",
    "Explain what a lighthouse does, briefly.",
    "Give three tips for learning a new language.",
    "Describe a rainy afternoon in a small town.",
    "What are the planets of the solar system?",
    "Write a short note thanking a colleague for their help.",
    "Explain why the sky is blue in simple words.",
    "List some common kitchen herbs and their uses.",
    "Describe how bread is made.",
    "Write a haiku about autumn leaves.",
    "What should someone pack for a day hike?",
    "Summarise the rules of chess in a few sentences.",
]
MAX_TOKENS = 48


def smollm2_path() -> str:
    from plait.models.catalog import BUILTINS

    return str(BUILTINS["smollm2"].local_path())


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    headers: dict[str, str]


def _wait_up(url: str, proc: subprocess.Popen[bytes], path: str, headers: dict[str, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server at {url} exited with {proc.returncode}")
        try:
            if httpx.get(url + path, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server at {url} did not come up in {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def plait_server(home: Path, *, preload: bool = True, **settings: Any) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "PLAIT_HOME": str(home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.update({f"PLAIT_{k.upper()}": str(v) for k, v in settings.items()})
    cmd = [sys.executable, "-m", "plait", "serve", "--port", str(port), "--access-log", str(home / "access.log")]
    proc = subprocess.Popen(cmd + ([] if preload else ["--no-preload"]), env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc, "/health", {}, 300)
        key = (home / "local.key").read_text().strip()
        yield Server("plait", url, proc, {"Authorization": f"Bearer {key}"})
    finally:
        _stop(proc)


@contextmanager
def llama_cpp_server(threads: int, n_ctx: int) -> Iterator[Server]:
    port = free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", smollm2_path(), "--model_alias", "smollm2",
           "--n_ctx", str(n_ctx), "--n_threads", str(threads), "--n_threads_batch", str(threads),
           "--interrupt_requests", "False", "--host", "127.0.0.1", "--port", str(port)]
    # The same OpenMP setting plait's server uses (see plait.serve.app): the two differ in the server only.
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc, "/v1/models", {}, 120)
        yield Server("llama-cpp-python server", url, proc, {})
    finally:
        _stop(proc)


# 1. Generation ------------------------------------------------------------------------------------------

async def _stream_one(client: httpx.AsyncClient, server: Server, prompt: str) -> tuple[float, int, float]:
    """One streamed chat completion: (time to first token, tokens, seconds)."""
    body = {"model": "smollm2", "stream": True, "max_tokens": MAX_TOKENS, "temperature": 0,
            "messages": [{"role": "user", "content": prompt}]}
    start = time.perf_counter()
    first = None
    tokens = 0
    async with client.stream("POST", server.url + "/v1/chat/completions", json=body, headers=server.headers) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                tokens += 1  # both servers send one generated token per chunk
                if first is None:
                    first = time.perf_counter() - start
    return (first if first is not None else float("nan")), tokens, time.perf_counter() - start


@dataclass
class _Tally:
    tokens: int = 0
    seconds: float = 0.0
    requests: int = 0

    def __post_init__(self) -> None:
        self.ttfts: list[float] = []


async def _generation_round(client: httpx.AsyncClient, server: Server, prompts: list[list[str]],
                            tally: _Tally) -> None:
    """One batch of work: len(prompts) concurrent clients, each sending its prompts one after another."""
    async def worker(jobs: list[str]) -> None:
        for prompt in jobs:
            ttft, n, _ = await _stream_one(client, server, prompt)
            tally.ttfts.append(ttft)
            tally.tokens += n
            tally.requests += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(j) for j in prompts))
    tally.seconds += time.perf_counter() - start


async def _generation(servers: list[Server], clients: int, per_client: int, rounds: int) -> dict[str, _Tally]:
    tallies = {s.name: _Tally() for s in servers}
    prompts = iter(PROMPTS * 50)
    async with httpx.AsyncClient(timeout=600) as client:
        for r in range(rounds):
            work = [[next(prompts) for _ in range(per_client)] for _ in range(clients)]
            order = servers if r % 2 == 0 else list(reversed(servers))
            for server in order:  # the same prompts for both, each going first every other round
                await _generation_round(client, server, work, tallies[server.name])
    return tallies


def _summary(t: _Tally, clients: int) -> dict[str, Any]:
    return {"clients": clients, "requests": t.requests, "generated_tokens": t.tokens, "seconds": round(t.seconds, 2),
            "tokens_per_second": round(t.tokens / t.seconds, 2),
            "ttft_p50_ms": round(percentile(t.ttfts, 50) * 1000, 1),
            "ttft_p95_ms": round(percentile(t.ttfts, 95) * 1000, 1)}


def bench_generation(home: Path, quick: bool, threads: int, n_ctx: int) -> dict[str, Any]:
    # clients: (requests per client, rounds). One request per client per round, so the two servers
    # alternate request by request (1 client) or batch by batch (4 clients).
    plan = {1: (1, 4 if quick else 10), 4: (1, 2 if quick else 5)}
    out: dict[str, Any] = {"model": "smollm2 (SmolLM2-135M-Instruct Q4_1 GGUF)", "max_tokens": MAX_TOKENS,
                           "temperature": 0, "n_ctx": n_ctx, "threads": threads, "plait": {}, "llama_cpp_server": {}}
    # generation_threads pinned to the peer's n_threads: like for like, not plait's own server default
    with plait_server(home, preload=False, threads=threads, generation_threads=threads, context_length=n_ctx) as ours, \
            llama_cpp_server(threads, n_ctx) as peer:
        servers = [ours, peer]

        async def warm() -> None:
            async with httpx.AsyncClient(timeout=600) as client:
                for server in servers:  # model loaded, first prompt evaluated
                    await _stream_one(client, server, "Say hello.")

        asyncio.run(warm())
        for clients, (per_client, rounds) in plan.items():
            tallies = asyncio.run(_generation(servers, clients, per_client, rounds))
            for server, label in ((ours, "plait"), (peer, "llama_cpp_server")):
                out[label][f"{clients}_clients"] = _summary(tallies[server.name], clients)
            print(f"generation, {clients} clients: plait {out['plait'][f'{clients}_clients']}, "
                  f"peer {out['llama_cpp_server'][f'{clients}_clients']}", file=sys.stderr)
        out["plait"]["server_rss_mb"] = round(rss_mb(ours.proc.pid), 1)
        out["llama_cpp_server"]["server_rss_mb"] = round(rss_mb(peer.proc.pid), 1)
    for c in plan:
        mine, theirs = out["plait"][f"{c}_clients"], out["llama_cpp_server"][f"{c}_clients"]
        out[f"ratio_{c}_clients"] = {
            "throughput_plait_over_peer": round(mine["tokens_per_second"] / theirs["tokens_per_second"], 3),
            "ttft_p95_plait_over_peer": round(mine["ttft_p95_ms"] / theirs["ttft_p95_ms"], 3),
            "ttft_p50_plait_over_peer": round(mine["ttft_p50_ms"] / theirs["ttft_p50_ms"], 3),
        }
    return out


# 2. Embedding micro-batching ----------------------------------------------------------------------------

async def _embedding_run(server: Server, texts: list[str], clients: int, model: str) -> dict[str, Any]:
    queue = list(reversed(texts))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        warm = {"model": model, "input": "warm up"}
        await client.post(server.url + "/v1/embeddings", json=warm, headers=server.headers)

        async def worker() -> None:
            while queue:
                text = queue.pop()
                t = time.perf_counter()
                r = await client.post(server.url + "/v1/embeddings", headers=server.headers,
                                      json={"model": model, "input": text})
                latencies.append(time.perf_counter() - t)
                statuses[r.status_code] += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - start
    return {"requests": len(texts), "seconds": round(wall, 2), "requests_per_second": round(len(texts) / wall, 1),
            "latency_p50_ms": round(percentile(latencies, 50) * 1000, 1),
            "latency_p95_ms": round(percentile(latencies, 95) * 1000, 1), "statuses": dict(statuses)}


def _batch_sizes(server: Server) -> dict[str, float]:
    text = httpx.get(server.url + "/metrics", headers=server.headers).text
    values = {}
    for line in text.splitlines():
        if line.startswith("plait_batch_size_count{") or line.startswith("plait_batch_size_sum{"):
            values[line.split("{")[0].rsplit("_", 1)[1]] = float(line.split()[-1])
    count, total = values.get("count", 0.0), values.get("sum", 0.0)
    return {"batches": count, "mean_batch_size": round(total / count, 2) if count else 0.0}


def bench_embeddings(home: Path, quick: bool) -> dict[str, Any]:
    from tests.corpora import lee_sentences

    sentences = list(dict.fromkeys(lee_sentences()))
    n = 320 if quick else 1000
    out: dict[str, Any] = {"clients": 32, "texts": "Lee news sentences, each sent once (no cache hits)"}
    for model in ("minilm-q8", "minilm"):
        result: dict[str, Any] = {}
        # On and off alternate in halves, so a change in the machine's load hits both alike.
        halves = [sentences[i * n // 2:(i + 1) * n // 2] for i in range(4)]
        runs = (("batching_on", 64, halves[0]), ("batching_off", 1, halves[1]),
                ("batching_off", 1, halves[2]), ("batching_on", 64, halves[3]))
        for label, batch_max, texts in runs:
            with plait_server(home, batch_max=batch_max, batch_window_ms=3, embed_model=model) as server:
                run = asyncio.run(_embedding_run(server, texts, 32, model))
                run.update(_batch_sizes(server))
            result.setdefault(label, []).append(run)
            print(f"embeddings {model}, {label}: {json.dumps(run)}", file=sys.stderr)
        for label in ("batching_on", "batching_off"):
            parts = result[label]
            seconds = sum(p["seconds"] for p in parts)
            requests = sum(p["requests"] for p in parts)
            result[label] = {"requests": requests, "seconds": round(seconds, 2),
                             "requests_per_second": round(requests / seconds, 1),
                             "latency_p50_ms": [p["latency_p50_ms"] for p in parts],
                             "mean_batch_size": [p["mean_batch_size"] for p in parts],
                             "statuses": [p["statuses"] for p in parts]}
        result["throughput_on_over_off"] = round(result["batching_on"]["requests_per_second"]
                                                 / result["batching_off"]["requests_per_second"], 2)
        result["in_process"] = _model_ceiling(home, model, sentences[:288])
        out[model] = result
    return out


def _model_ceiling(home: Path, model: str, texts: list[str]) -> dict[str, Any]:
    """What batching can gain at most: the model's own time per text, one by one and in batches of 32,
    in this process with no HTTP (the server's on/off ratio cannot beat this ratio)."""
    from plait.models.base import Embedder
    from plait.runtime import Runtime
    from plait.settings import load_settings

    runtime = Runtime(load_settings(home=str(home)))
    embedder = runtime.model(model, Embedder)
    embedder.embed_many(texts[:32])
    start = time.perf_counter()
    for text in texts[:96]:
        embedder.embed_many([text])
    single = (time.perf_counter() - start) / 96
    start = time.perf_counter()
    for i in range(32, len(texts), 32):
        embedder.embed_many(texts[i:i + 32])
    batched = (time.perf_counter() - start) / (len(texts) - 32)
    runtime.close()
    return {"ms_per_text_one_by_one": round(single * 1000, 2), "ms_per_text_batch_32": round(batched * 1000, 2),
            "batch_gain_x": round(single / batched, 2)}


# 3. Cache -----------------------------------------------------------------------------------------------

def bench_cache(server: Server, repeats: int) -> dict[str, Any]:
    from tests.corpora import lee_articles

    article = lee_articles()[0]
    out: dict[str, Any] = {}
    requests = {"sentiment": ("/v1/sentiment", {"text": article}),
                "summarize": ("/v1/summarize", {"text": article, "sentences": 2}),
                "embeddings": ("/v1/embeddings", {"model": "minilm-q8", "input": article})}
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client:
        for name, (path, body) in requests.items():
            t = time.perf_counter()
            first = client.post(path, json=body)
            first_ms = (time.perf_counter() - t) * 1000
            if first.status_code != 200:
                out[name] = {"status": first.status_code}
                continue
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                r = client.post(path, json=body)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and r.content == first.content
            out[name] = {"first_ms": round(first_ms, 1), "cached_p50_ms": round(percentile(times, 50), 2),
                         "cached_p95_ms": round(percentile(times, 95), 2), "repeats": repeats}
    return out


# 4. Mixed load from a second process --------------------------------------------------------------------

async def mixed_load(url: str, key: str, seconds: float, workers: int) -> dict[str, Any]:
    """Run in the second process: chat, embeddings, classify and search until ``seconds`` pass."""
    from tests.corpora import lee_sentences

    sentences = lee_sentences()
    headers = {"Authorization": f"Bearer {key}"}
    statuses: dict[str, Counter[int]] = {}
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    kinds = ["chat", "chat_stream", "embeddings", "embeddings", "classify", "search", "sentiment"]

    def body(kind: str, i: int) -> tuple[str, dict[str, Any]]:
        text = sentences[i % len(sentences)]
        if kind.startswith("chat"):
            return "/v1/chat/completions", {"model": "smollm2", "max_tokens": 24, "stream": kind == "chat_stream",
                                            "messages": [{"role": "user", "content": f"One line about: {text}"}]}
        if kind == "embeddings":
            return "/v1/embeddings", {"model": "minilm-q8", "input": [text, sentences[(i + 7) % len(sentences)]]}
        if kind == "classify":
            return "/v1/classify", {"texts": text, "labels": ["politics", "sport", "disaster", "business"]}
        if kind == "search":
            return "/v1/search", {"query": " ".join(text.split()[:4]) or "news"}
        return "/v1/sentiment", {"text": text}

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        async def worker(w: int) -> None:
            i = w * 1000
            while time.monotonic() < deadline:
                kind = kinds[i % len(kinds)]
                path, payload = body(kind, i)
                i += 1
                try:
                    if payload.get("stream"):
                        async with client.stream("POST", path, json=payload) as r:
                            async for _ in r.aiter_bytes():
                                pass
                    else:
                        r = await client.post(path, json=payload)
                    statuses.setdefault(kind, Counter())[r.status_code] += 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1

        await asyncio.gather(*(worker(w) for w in range(workers)))
    return {"statuses": {k: dict(v) for k, v in statuses.items()}, "transport_errors": dict(errors)}


def bench_mixed(server: Server, seconds: float) -> dict[str, Any]:
    key = server.headers["Authorization"].split()[1]
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        result_path = Path(f.name)
    loader = subprocess.Popen([sys.executable, __file__, "--mixed-load-worker", server.url, key, str(seconds),
                               str(result_path)])
    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    while loader.poll() is None:
        samples.append((round(time.monotonic() - start, 1), round(rss_mb(server.proc.pid), 1)))
        time.sleep(1.0)
    loaded = json.loads(result_path.read_text())
    result_path.unlink()
    by_status: Counter[int] = Counter()
    for counts in loaded["statuses"].values():
        for status, n in counts.items():
            by_status[int(status)] += n
    tenth = max(1, len(samples) // 6)
    early = sum(m for _, m in samples[:tenth]) / tenth
    late = sum(m for _, m in samples[-tenth:]) / tenth
    return {"seconds": seconds, "requests": sum(by_status.values()), "by_status": dict(by_status),
            "server_5xx": sum(n for s, n in by_status.items() if s >= 500), "by_kind": loaded["statuses"],
            "transport_errors": loaded["transport_errors"],
            "rss_mb_first_sixth": round(early, 1), "rss_mb_last_sixth": round(late, 1),
            "rss_growth_mb": round(late - early, 1), "rss_samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, a 15-second mixed load")
    parser.add_argument("--mixed-load-worker", nargs=4, metavar=("URL", "KEY", "SECONDS", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["generation", "embeddings", "cache", "mixed"], action="append")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads for both servers (default: the threads setting); on a machine "
                             "busy with other work 1 avoids llama.cpp's threads waiting on each other")
    args = parser.parse_args()
    if args.mixed_load_worker:
        url, key, seconds, out = args.mixed_load_worker
        result = asyncio.run(mixed_load(url, key, float(seconds), workers=4))
        Path(out).write_text(json.dumps(result))
        return

    from plait.settings import load_settings

    threads = args.threads or load_settings().threads
    shared = Path(os.environ.get("PLAIT_BENCH_HOME", "/tmp/plait-bench-serve"))
    (shared / "models").mkdir(parents=True, exist_ok=True)
    only = set(args.only or ["generation", "embeddings", "cache", "mixed"])
    load_before = os.getloadavg()
    results: dict[str, Any] = {"quick": args.quick, "load_before": [round(x, 2) for x in load_before]}
    with tempfile.TemporaryDirectory(prefix="plait-bench-serve-") as tmp:
        home = Path(tmp)
        (home / "models").symlink_to(shared / "models")
        if "generation" in only:
            results["generation"] = bench_generation(home, args.quick, threads, 2048)
        if "embeddings" in only:
            results["embeddings"] = bench_embeddings(home, args.quick)
        if only & {"cache", "mixed"}:
            with plait_server(home) as server:
                if "cache" in only:
                    results["cache"] = bench_cache(server, 50 if args.quick else 200)
                    print(f"cache: {json.dumps(results['cache'])}", file=sys.stderr)
                if "mixed" in only:
                    results["mixed_load"] = bench_mixed(server, 15 if args.quick else 60)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    write_results("serve", results)


if __name__ == "__main__":
    main()
