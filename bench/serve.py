"""Benchmark: plait's server against llama.cpp's own server and llama-cpp-python's, micro-batching on and
off, the cache, a conversation's prompt cache, and a 60-second mixed load from a second process. Everything
on 127.0.0.1.

    python bench/serve.py                 # everything (about 20 minutes on 2 cores)
    python bench/serve.py --quick         # fewer requests and a 15-second mixed load

1. Generation (SmolLM2-135M Q4_1 GGUF, 2048 tokens of context per sequence, the same threads for decoding
   and for prompts on every server): plait (`plait serve`), llama.cpp's own HTTP server (the engine plait
   runs, in a separate process, with the same slots, prompt chunk and prompt cache) and
   `python -m llama_cpp.server` (with --interrupt_requests False, so a new request waits instead of
   cutting off the one being answered), all running, on their own ports; streamed chat completions with
   greedy decoding, repeat_penalty 1.0 and max_tokens 128, a new prompt for every request and the same
   prompts for every server, at 1, 4 and 8 concurrent clients, in rounds where each server goes first in
   turn (the machine is shared: its load changes during a run): generated tokens/s and time to first
   token p50/p95, measured by the client. Token counts are compared prompt by prompt.
2. Embeddings: 32 concurrent clients, each sending single-text requests with texts never sent before
   (so no cache hit), against plait with micro-batching on (batch_max 64) and off (1); with the default
   minilm-q8 (int8 ONNX) and with minilm (PyTorch fp32, where a batch costs much less than its texts
   one by one).
3. Cache: the same task request (/v1/sentiment, /v1/summarize) repeated: latency of the cached answers.
4. Conversation: five turns, each sending the whole history; time to first token of turn 5 against turn 1,
   and against turn 5's history sent with nothing cached.
5. Mixed load: a second process with 8 clients sends chat, streamed chat (some leaving mid-answer),
   embeddings, classify, search, sentiment and summarize requests for 60 s while this one samples the
   server's resident memory; counts responses by status, then checks an answer still comes back whole.
   It runs twice: the first minute fills the bounded caches and loads the models, and the memory of the
   second minute is the one reported as flat or not.

Results go to bench/results/serve.json. Servers run as subprocesses with their own PLAIT_HOME; the
minilm-q8 model is built once into $PLAIT_BENCH_HOME/models (default /tmp/plait-bench-serve).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
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

TOPICS = [
    "the history of tea", "lighthouses", "learning a new language", "a rainy afternoon in a small town",
    "the planets of the solar system", "thanking a colleague", "why the sky is blue", "kitchen herbs",
    "how bread is made", "autumn leaves", "packing for a day hike", "the rules of chess", "bicycles",
    "honey bees", "the water cycle", "volcanoes", "public libraries", "composting", "the moon landing",
    "sourdough starters", "trains in winter", "saving money", "sleep habits", "the printing press",
    "owls", "coral reefs", "a first job interview", "street markets", "the violin", "glaciers",
    "board games", "recycling plastic", "a long train journey", "coffee", "mountain weather", "bridges",
]
STYLES = ["Write two sentences about {}.", "Explain {} briefly to a child.", "Give three facts about {}.",
          "Describe {} in a short paragraph."]
# Every request a new prompt (no server can answer one from an earlier request's cache), the same list
# for every server.
PROMPTS = [style.format(topic) for topic in TOPICS for style in STYLES]
MAX_TOKENS = 128
# Greedy decoding everywhere. llama.cpp's server and plait default to repeat_penalty 1.0 (off);
# llama-cpp-python's server defaults to 1.1, so both peers are sent 1.0 explicitly. SmolLM2's special tokens
# (ids 0-16: end of text, end of turn…) are banned, so every answer is exactly MAX_TOKENS tokens on every
# server: llama-cpp-python is a different build of llama.cpp whose arithmetic differs in the last bits, so
# its greedy choice differs from llama.cpp's on near-ties and its answers would otherwise end elsewhere.
NO_END = {str(token): -100 for token in range(17)}
# Tokens are counted from the usage the llama.cpp servers report at the end of a stream: they send a
# multi-byte character split across tokens as one chunk, so chunks undercount (120 chunks for 128 tokens
# was seen). llama-cpp-python's server sends one chunk per token and is counted by chunks.
COUNTED = {"include_usage": True}


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
    extra: dict[str, Any]  # request fields this server needs to sample like the others


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
        yield Server("plait", url, proc, {"Authorization": f"Bearer {key}"}, {"stream_options": COUNTED})
    finally:
        _stop(proc)


@contextmanager
def llama_cpp_python_server(threads: int, n_ctx: int) -> Iterator[Server]:
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
        yield Server("llama_cpp_python_server", url, proc, {}, {"repeat_penalty": 1.0})
    finally:
        _stop(proc)


def _run_llama_server(port: int, threads: int, n_ctx: int, slots: int, chunk: int, cache_mib: int,
                      key: str) -> None:
    """llama.cpp's own server (the engine plait runs, as the xllamacpp wheel ships it) listening on
    127.0.0.1 with a key: the benchmark's peer only, configured exactly as plait configures it."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = smollm2_path()
    params.n_parallel = slots
    params.n_ctx = n_ctx * slots
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.n_batch = params.n_ubatch = chunk
    params.cache_ram_mib = cache_mib
    params.hostnames = ["127.0.0.1"]
    params.port = port
    # HTTP threads enough for every client at once (its default, slots + 2, dropped connections at 8
    # clients); they only read and write sockets, the decoding threads are the ones set above.
    params.n_threads_http = 16
    params.api_keys = [key]
    params.ui = False
    params.verbosity = -1
    server = xllamacpp.Server(params)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    del server


@contextmanager
def llama_cpp_server(threads: int, n_ctx: int, slots: int, chunk: int, cache_mib: int) -> Iterator[Server]:
    import secrets

    port, key = free_port(), secrets.token_hex(16)  # hex: never starts with "-" (an option)
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    proc = subprocess.Popen([sys.executable, __file__, "--llama-server", str(port), str(threads), str(n_ctx),
                             str(slots), str(chunk), str(cache_mib), key],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        _wait_up(url, proc, "/v1/models", headers, 120)
        yield Server("llama_cpp_server", url, proc, headers, {"repeat_penalty": 1.0, "stream_options": COUNTED})
    finally:
        _stop(proc)


# 1. Generation ------------------------------------------------------------------------------------------

async def _stream_one(client: httpx.AsyncClient, server: Server, prompt: str) -> tuple[float, int, float, str]:
    """One streamed chat completion: (time to first token, tokens, seconds, text)."""
    body = {"model": "smollm2", "stream": True, "max_tokens": MAX_TOKENS, "temperature": 0, "logit_bias": NO_END,
            "messages": [{"role": "user", "content": prompt}], **server.extra}
    start = time.perf_counter()
    first = None
    tokens = 0
    parts: list[str] = []
    counted: int | None = None
    async with client.stream("POST", server.url + "/v1/chat/completions", json=body, headers=server.headers) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            choices = chunk.get("choices") or []
            content = (choices[0].get("delta") or {}).get("content") if choices else None
            if chunk.get("usage"):
                counted = int(chunk["usage"]["completion_tokens"])
            if content:
                tokens += 1
                parts.append(content)
                if first is None:
                    first = time.perf_counter() - start
    return ((first if first is not None else float("nan")), counted if counted is not None else tokens,
            time.perf_counter() - start, "".join(parts))


@dataclass
class _Tally:
    tokens: int = 0
    seconds: float = 0.0
    requests: int = 0

    def __post_init__(self) -> None:
        self.ttfts: list[float] = []
        self.per_round: list[float] = []  # tokens/s of each round, in order
        self.counts: dict[str, int] = {}  # prompt -> tokens generated
        self.texts: dict[str, str] = {}


async def _generation_round(client: httpx.AsyncClient, server: Server, prompts: list[list[str]],
                            tally: _Tally) -> None:
    """One batch of work: len(prompts) concurrent clients, each sending its prompts one after another."""
    async def worker(jobs: list[str]) -> None:
        for prompt in jobs:
            ttft, n, _, text = await _stream_one(client, server, prompt)
            tally.ttfts.append(ttft)
            tally.tokens += n
            tally.requests += 1
            tally.counts[prompt] = n
            tally.texts[prompt] = text

    start, tokens = time.perf_counter(), tally.tokens
    await asyncio.gather(*(worker(j) for j in prompts))
    seconds = time.perf_counter() - start
    tally.seconds += seconds
    tally.per_round.append((tally.tokens - tokens) / seconds)


async def _generation(servers: list[Server], clients: int, per_client: int, rounds: int,
                      prompts: Iterator[str]) -> dict[str, _Tally]:
    tallies = {s.name: _Tally() for s in servers}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    for r in range(rounds):
        work = [[next(prompts) for _ in range(per_client)] for _ in range(clients)]
        order = servers[r % len(servers):] + servers[:r % len(servers)]  # each goes first in turn
        for server in order:  # the same prompts for every server
            # A new client per round: a connection left idle through the other servers' rounds is closed by
            # the server (uvicorn's 5 s keep-alive), and reusing it as it closes fails the request.
            async with httpx.AsyncClient(timeout=600, limits=limits) as client:
                try:
                    await _generation_round(client, server, work, tallies[server.name])
                except httpx.HTTPError as exc:
                    raise RuntimeError(f"{server.name} failed in round {r} with {clients} clients: {exc!r}") from exc
    return tallies


def _summary(t: _Tally, clients: int) -> dict[str, Any]:
    return {"clients": clients, "requests": t.requests, "generated_tokens": t.tokens, "seconds": round(t.seconds, 2),
            "tokens_per_second": round(t.tokens / t.seconds, 2),
            "ttft_p50_ms": round(percentile(t.ttfts, 50) * 1000, 1),
            "ttft_p95_ms": round(percentile(t.ttfts, 95) * 1000, 1),
            "tokens_per_second_by_round": [round(x, 1) for x in t.per_round]}


def bench_generation(home: Path, quick: bool, threads: int, n_ctx: int, slots: int, chunk: int,
                     cache_mib: int) -> dict[str, Any]:
    # clients: (requests per client, rounds); every server answers the same prompts, and each goes first
    # in turn (the machine is shared: its load changes during a run).
    # Four clients, where the targets are, get the most rounds: one round is ~15 s per server, and the
    # machine's other work moves a round's figure by ±15%.
    plan = {1: (2, 3 if quick else 6), 4: (2, 2 if quick else 8), 8: (2, 1 if quick else 3)}
    out: dict[str, Any] = {
        "model": "smollm2 (SmolLM2-135M-Instruct Q4_1 GGUF)", "max_tokens": MAX_TOKENS,
        "sampling": "greedy (temperature 0), repeat_penalty 1.0, no other penalties, special tokens banned "
                    "(logit_bias -100: every answer is max_tokens long), on every server",
        "threads": f"{threads} for decoding and {threads} for prompts, on every server",
        "n_ctx_per_sequence": n_ctx, "slots": slots, "prompt_chunk_tokens": chunk, "prompt_cache_mib": cache_mib,
        "servers": {"plait": "plait serve (llama.cpp's server loop in process, xllamacpp)",
                    "llama_cpp_server": "llama.cpp's own HTTP server (xllamacpp's listener), separate process, "
                                        "same slots, chunk and cache",
                    "llama_cpp_python_server": "python -m llama_cpp.server, one request at a time "
                                               "(--interrupt_requests False)"}}
    with plait_server(home, preload=False, threads=threads, generation_threads=threads, context_length=n_ctx,
                      generation_slots=slots, prompt_chunk_tokens=chunk, prompt_cache_mib=cache_mib) as ours, \
            llama_cpp_server(threads, n_ctx, slots, chunk, cache_mib) as engine, \
            llama_cpp_python_server(threads, n_ctx) as peer:
        servers = [ours, engine, peer]
        prompts = iter(PROMPTS * 20)

        async def warm() -> None:
            async with httpx.AsyncClient(timeout=600) as client:
                for server in servers:  # model loaded, first prompt evaluated
                    await _stream_one(client, server, "Say hello.")

        asyncio.run(warm())
        mismatches: list[dict[str, Any]] = []
        same_text: dict[str, str] = {}
        for clients, (per_client, rounds) in plan.items():
            tallies = asyncio.run(_generation(servers, clients, per_client, rounds, prompts))
            for server in servers:
                out.setdefault(server.name, {})[f"{clients}_clients"] = _summary(tallies[server.name], clients)
            reference = tallies["plait"]
            for server in servers[1:]:
                for prompt, n in reference.counts.items():
                    theirs = tallies[server.name].counts.get(prompt)
                    if theirs != n:
                        mismatches.append({"clients": clients, "server": server.name, "prompt": prompt,
                                           "plait_tokens": n, "their_tokens": theirs,
                                           "plait_text": reference.texts[prompt],
                                           "their_text": tallies[server.name].texts.get(prompt)})
            for server in servers[1:]:
                same = sum(tallies[server.name].texts.get(p) == t for p, t in reference.texts.items())
                same_text[f"{server.name}_{clients}_clients"] = f"{same}/{len(reference.texts)} answers as plait's"
            print(f"generation, {clients} clients: " + ", ".join(
                f"{s.name} {out[s.name][f'{clients}_clients']}" for s in servers), file=sys.stderr)
        for server in servers:
            out[server.name]["server_rss_mb"] = round(rss_mb(server.proc.pid), 1)
    out["token_count_mismatches"] = mismatches
    out["identical_texts"] = same_text
    if mismatches:  # recorded in the JSON, not fatal: the figures of a long run are not thrown away
        print(f"servers generated different token counts: {mismatches[:3]}", file=sys.stderr)
    for c in plan:
        mine = out["plait"][f"{c}_clients"]
        for peer_name in ("llama_cpp_python_server", "llama_cpp_server"):
            theirs = out[peer_name][f"{c}_clients"]
            # Both ran each round's prompts back to back, so a round's ratio compares like with like.
            by_round = [a / b for a, b in zip(mine["tokens_per_second_by_round"], theirs["tokens_per_second_by_round"],
                                              strict=True)]
            out.setdefault(f"ratio_{c}_clients", {})[f"plait_over_{peer_name}"] = {
                "throughput": round(mine["tokens_per_second"] / theirs["tokens_per_second"], 3),
                "throughput_by_round": [round(x, 3) for x in by_round],
                "throughput_median_of_rounds": round(statistics.median(by_round), 3),
                "ttft_p50": round(mine["ttft_p50_ms"] / theirs["ttft_p50_ms"], 3),
                "ttft_p95": round(mine["ttft_p95_ms"] / theirs["ttft_p95_ms"], 3),
            }
    four = out["plait"]["4_clients"]
    out["targets_4_clients"] = {
        "throughput_vs_llama_cpp_python_server >= 2.0": out["ratio_4_clients"]["plait_over_llama_cpp_python_server"][
            "throughput"],
        "ttft_p95_ms <= 1000": four["ttft_p95_ms"],
        "throughput_vs_llama_cpp_server >= 0.85": out["ratio_4_clients"]["plait_over_llama_cpp_server"]["throughput"],
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


# 4. A conversation: the prompt cache across turns ------------------------------------------------------

TURNS = ["I am planning a vegetable garden. What should I plant first?", "How often should I water it?",
         "What about pests, how do I keep them away?", "Which of those vegetables grow fastest?",
         "Summarise your advice in three short points."]


async def _turn(client: httpx.AsyncClient, server: Server, history: list[dict[str, str]]) -> tuple[dict[str, Any], str]:
    body = {"model": "smollm2", "stream": True, "max_tokens": 96, "temperature": 0, "messages": history,
            "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    ttft: float | None = None
    parts: list[str] = []
    usage: dict[str, Any] = {}
    async with client.stream("POST", server.url + "/v1/chat/completions", json=body, headers=server.headers) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            content = ((chunk.get("choices") or [{}])[0].get("delta") or {}).get("content")
            if content:
                ttft = ttft or time.perf_counter() - start
                parts.append(content)
            usage = chunk.get("usage") or usage
    return {"ttft_ms": round((ttft or float("nan")) * 1000, 1), "prompt_tokens": usage.get("prompt_tokens"),
            "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens")}, "".join(parts)


async def _conversation(server: Server) -> dict[str, Any]:
    """Five turns, each sending the whole history so far (as every chat client does): per turn, the time to
    the first token and the prompt tokens the server did not read again. Then turn 5's history once more
    with its first message changed, so no cache holds it: what reading the whole history costs."""
    history: list[dict[str, str]] = [{"role": "system", "content": "You are a helpful gardener."}]
    turns = []
    async with httpx.AsyncClient(timeout=600) as client:
        for i, text in enumerate(TURNS):
            history.append({"role": "user", "content": text})
            if i == len(TURNS) - 1:
                cold_history = [{"role": "system", "content": "You are a kind and helpful gardener."}, *history[1:]]
            turn, answer = await _turn(client, server, history)
            turns.append(turn)
            history.append({"role": "assistant", "content": answer})
        cold, _ = await _turn(client, server, cold_history)
    return {"turns": turns, "turn5_history_uncached": cold,
            "ttft_turn5_over_turn1": round(turns[-1]["ttft_ms"] / turns[0]["ttft_ms"], 2),
            "ttft_turn5_cached_over_uncached": round(turns[-1]["ttft_ms"] / cold["ttft_ms"], 2)}


def bench_conversation(server: Server) -> dict[str, Any]:
    return asyncio.run(_conversation(server))


# 5. Mixed load from a second process --------------------------------------------------------------------

async def mixed_load(url: str, key: str, seconds: float, workers: int) -> dict[str, Any]:
    """Run in the second process: chat, embeddings, classify and search until ``seconds`` pass."""
    from tests.corpora import lee_sentences

    sentences = lee_sentences()
    headers = {"Authorization": f"Bearer {key}"}
    statuses: dict[str, Counter[int]] = {}
    errors: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    kinds = ["chat", "chat_stream", "chat_stream_disconnect", "embeddings", "classify", "search", "sentiment",
             "summarize"]
    disconnects = 0

    def body(kind: str, i: int) -> tuple[str, dict[str, Any]]:
        text = sentences[i % len(sentences)]
        if kind.startswith("chat"):
            return "/v1/chat/completions", {"model": "smollm2", "max_tokens": 48, "stream": kind != "chat",
                                            "messages": [{"role": "user", "content": f"One line about: {text}"}]}
        if kind == "embeddings":
            return "/v1/embeddings", {"model": "minilm-q8", "input": [text, sentences[(i + 7) % len(sentences)]]}
        if kind == "classify":
            return "/v1/classify", {"texts": text, "labels": ["politics", "sport", "disaster", "business"]}
        if kind == "search":
            return "/v1/search", {"query": " ".join(text.split()[:4]) or "news"}
        if kind == "summarize":
            return "/v1/summarize", {"text": " ".join(sentences[i % len(sentences):i % len(sentences) + 8]),
                                     "sentences": 2}
        return "/v1/sentiment", {"text": text}

    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120) as client:
        async def worker(w: int) -> None:
            nonlocal disconnects
            rng = random.Random(w)
            i = w * 1000
            while time.monotonic() < deadline:
                kind = kinds[rng.randrange(len(kinds))]
                path, payload = body(kind, i)
                i += 1
                try:
                    if payload.get("stream"):
                        leave_after = rng.randint(1, 6) if kind == "chat_stream_disconnect" else None
                        async with client.stream("POST", path, json=payload) as r:
                            seen = 0
                            async for _ in r.aiter_lines():
                                seen += 1
                                if leave_after is not None and seen >= leave_after:
                                    disconnects += 1
                                    break  # closes the connection mid-answer: the server must stop and recover
                    else:
                        r = await client.post(path, json=payload)
                    statuses.setdefault(kind, Counter())[r.status_code] += 1
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1

        await asyncio.gather(*(worker(w) for w in range(workers)))
        # Every slot must be free again after the disconnects: a last answer comes back whole.
        final = await client.post("/v1/chat/completions", json={"model": "smollm2", "max_tokens": 16, "messages": [
            {"role": "user", "content": "Say hello."}]})
    return {"statuses": {k: dict(v) for k, v in statuses.items()}, "transport_errors": dict(errors),
            "client_disconnects": disconnects, "answer_after_load": final.status_code}


def bench_mixed(server: Server, seconds: float) -> dict[str, Any]:
    """The mixed load twice: the first run fills what is meant to fill (llama.cpp's prompt cache, up to
    prompt_cache_mib; the response cache, up to cache_entries; lazily loaded models); memory must then
    stay flat through the second, measured run."""
    warm_up = _mixed_run(server, seconds)
    measured = _mixed_run(server, seconds)
    measured["warm_up"] = {k: warm_up[k] for k in ("requests", "errors", "server_5xx", "rss_mb_first_sixth",
                                                   "rss_mb_last_sixth", "rss_growth_mb")}
    return measured


def _mixed_run(server: Server, seconds: float) -> dict[str, Any]:
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
    return {"seconds": seconds, "clients": 8, "requests": sum(by_status.values()), "by_status": dict(by_status),
            "server_5xx": sum(n for s, n in by_status.items() if s >= 500),
            "errors": sum(n for s, n in by_status.items() if s != 200) + sum(loaded["transport_errors"].values()),
            "by_kind": loaded["statuses"], "transport_errors": loaded["transport_errors"],
            "client_disconnects": loaded["client_disconnects"], "answer_after_load": loaded["answer_after_load"],
            "rss_mb_first_sixth": round(early, 1), "rss_mb_last_sixth": round(late, 1),
            "rss_growth_mb": round(late - early, 1), "rss_samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, a 15-second mixed load")
    parser.add_argument("--mixed-load-worker", nargs=4, metavar=("URL", "KEY", "SECONDS", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--llama-server", nargs=7, help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["generation", "embeddings", "cache", "conversation", "mixed"],
                        action="append")
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads for every server (default: the threads setting)")
    args = parser.parse_args()
    if args.llama_server:
        port, threads_, n_ctx, slots, chunk, cache_mib, key = args.llama_server
        _run_llama_server(int(port), int(threads_), int(n_ctx), int(slots), int(chunk), int(cache_mib), key)
        return
    if args.mixed_load_worker:
        url, key, seconds, out = args.mixed_load_worker
        result = asyncio.run(mixed_load(url, key, float(seconds), workers=8))
        Path(out).write_text(json.dumps(result))
        return

    from plait.settings import load_settings

    settings = load_settings()
    threads = args.threads or settings.threads
    shared = Path(os.environ.get("PLAIT_BENCH_HOME", "/tmp/plait-bench-serve"))
    (shared / "models").mkdir(parents=True, exist_ok=True)
    only = set(args.only or ["generation", "embeddings", "cache", "conversation", "mixed"])
    load_before = os.getloadavg()  # write_results adds the 1-minute load at the end
    results: dict[str, Any] = {"quick": args.quick, "load_before": [round(x, 2) for x in load_before]}
    with tempfile.TemporaryDirectory(prefix="plait-bench-serve-") as tmp:
        home = Path(tmp)
        (home / "models").symlink_to(shared / "models")
        if "generation" in only:
            results["generation"] = bench_generation(home, args.quick, threads, 2048, settings.generation_slots,
                                                     settings.prompt_chunk_tokens, settings.prompt_cache_mib)
        if "embeddings" in only:
            results["embeddings"] = bench_embeddings(home, args.quick)
        if only & {"cache", "conversation", "mixed"}:
            with plait_server(home) as server:
                if "conversation" in only:
                    results["conversation"] = bench_conversation(server)
                    print(f"conversation: {json.dumps(results['conversation'])}", file=sys.stderr)
                if "cache" in only:
                    results["cache"] = bench_cache(server, 50 if args.quick else 200)
                    print(f"cache: {json.dumps(results['cache'])}", file=sys.stderr)
                if "mixed" in only:
                    results["mixed_load"] = bench_mixed(server, 15 if args.quick else 60)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    write_results("serve", results)


if __name__ == "__main__":
    main()
