"""bench/generate: plait's in-process generation (`plait generate`, `plait chat`, `plait.generate`) against
the engine it runs, used directly, on the same GGUF, prompts and settings.

    python bench/generate.py [--rounds 8] [--max-tokens 128]

The engine is llama.cpp's server loop through xllamacpp: used directly, it is one `xllamacpp.Server` with
one slot and the GGUF's context size, streaming `handle_chat_completions`; plait is `TextGenerator.stream`
on the built-in `smollm2` with its defaults (generation_slots 4, prompt_chunk_tokens 256). llama-cpp-python
(a different build of llama.cpp), when installed, runs beside them for reference. Every side uses the same
threads for decoding and for prompts, greedy decoding, and bans SmolLM2's special tokens so every answer
is exactly max_tokens long. Each round sends a new prompt (the same one to every side, each side an engine
of its own), so the time to first token includes reading the prompt, never a cache hit; the sides take turns
going first. Reported per side: time to first token and decode tokens/s (tokens after the first / time after
the first), medians over rounds; ratios are plait over the engine used directly. Then chunked prompt
reading: three answers stream while a fourth request brings a 1,450-token prompt; the longest pause between
two of their tokens, with plait's prompt_chunk_tokens and with 2048 (the whole prompt in one step). Results:
bench/results/generate.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentile, write_results  # noqa: E402

PROMPTS = [
    "Explain in a short paragraph why regular exercise is good for health.",
    "Describe how a bicycle gear system works.",
    "Write a short story about a lighthouse keeper and a storm.",
    "Give advice to someone starting their first vegetable garden.",
    "Explain what a compiler does, for a beginner.",
    "Describe the life cycle of a butterfly.",
    "Write a letter inviting neighbours to a street party.",
    "Explain why the seasons change during the year.",
    "Describe a busy morning at a train station.",
    "Give three reasons to learn to cook at home, with examples.",
    "Explain how vaccines help the body fight disease.",
    "Write a product description for a waterproof hiking jacket.",
]
NO_END = {token: -100.0 for token in range(17)}  # SmolLM2's special tokens: every answer runs to max_tokens


def measure(stream: Iterator[str]) -> dict[str, float]:
    import time

    start = time.perf_counter()
    first = None
    tokens = 0
    for piece in stream:
        if not piece:
            continue
        tokens += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    assert first is not None, "no tokens generated"
    return {"ttft_s": first - start, "tokens": tokens,
            "decode_tok_s": (tokens - 1) / (end - first) if tokens > 1 else 0.0,
            "total_tok_s": tokens / (end - start)}


def engine_stream(server: Any, prompt: str, max_tokens: int) -> Iterator[str]:
    """xllamacpp's streaming call, as its own documentation shows it: a callback per chunk, here handed to
    this generator through a queue (the call blocks until the answer ends)."""
    import queue

    chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
    body = {"messages": [{"role": "user", "content": prompt}], "stream": True, "max_tokens": max_tokens,
            "temperature": 0, "logit_bias": {str(t): b for t, b in NO_END.items()}}

    def run() -> None:
        server.handle_chat_completions(body, lambda chunk: chunks.put(chunk) or False)
        chunks.put(None)

    threading.Thread(target=run, daemon=True).start()
    while (chunk := chunks.get()) is not None:
        for choice in chunk.get("choices") or ():
            yield (choice.get("delta") or {}).get("content") or ""


def long_prompt_stall(settings: Any, chunk: int, max_tokens: int) -> dict[str, float]:
    """Three answers streaming when a fourth request brings a 1,450-token prompt: the longest pause between
    two tokens of the three while it is read, with llama.cpp reading ``chunk`` prompt tokens per step."""
    import time

    from plait.models.base import GenerationOptions, GenerationRequest, TextGenerator
    from plait.models.catalog import BUILTINS
    from plait.models.loading import load_model

    model = load_model(BUILTINS["smollm2"], settings.model_copy(update={"prompt_chunk_tokens": chunk}))
    assert isinstance(model, TextGenerator)
    gaps: list[float] = []
    long_ttft: list[float] = []

    def stream(prompt: str, record: bool) -> None:
        request = GenerationRequest(prompt=prompt, options=GenerationOptions(max_tokens=max_tokens, temperature=0,
                                                                             logit_bias=NO_END))
        start = last = time.perf_counter()
        for delta in model.stream(request):
            if delta.text:
                now = time.perf_counter()
                if record:
                    gaps.append(now - last)
                elif not long_ttft:
                    long_ttft.append(now - start)
                last = now

    document = " ".join(PROMPTS * 12)  # 1,452 tokens
    streams = [threading.Thread(target=stream, args=(f"Story {i}: once upon a time", True)) for i in range(3)]
    for t in streams:
        t.start()
    time.sleep(1.0)  # the three are decoding
    stream("Summarise: " + document, False)
    for t in streams:
        t.join()
    model.close()
    return {"prompt_chunk_tokens": chunk, "longest_pause_ms": round(max(gaps) * 1000, 1),
            "median_pause_ms": round(statistics.median(gaps) * 1000, 1),
            "long_prompt_ttft_ms": round(long_ttft[0] * 1000, 1) if long_ttft else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as plait's entry points set it

    import xllamacpp

    from plait.models.base import GenerationOptions, GenerationRequest, Message, TextGenerator
    from plait.models.catalog import BUILTINS
    from plait.runtime import Runtime
    from plait.settings import load_settings

    settings = load_settings()
    threads = settings.generation_threads or settings.threads
    path = str(BUILTINS["smollm2"].local_path())
    params = xllamacpp.CommonParams()
    params.model.path = path
    params.n_ctx = settings.context_length
    params.n_parallel = 1
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    engine = xllamacpp.Server(params)
    ours = Runtime(settings).model("smollm2", TextGenerator)

    def plait_stream(prompt: str) -> Iterator[str]:
        request = GenerationRequest(messages=(Message("user", prompt),),
                                    options=GenerationOptions(max_tokens=args.max_tokens, temperature=0,
                                                              logit_bias=NO_END))
        for delta in ours.stream(request):
            yield delta.text

    sides: dict[str, Callable[[str], Iterator[str]]] = {
        "engine_direct": lambda p: engine_stream(engine, p, args.max_tokens), "plait": plait_stream}
    try:
        import llama_cpp

        raw = llama_cpp.Llama(model_path=path, n_ctx=settings.context_length, n_threads=threads,
                              n_threads_batch=threads, verbose=False)

        def raw_stream(prompt: str) -> Iterator[str]:
            for chunk in raw.create_chat_completion(messages=[{"role": "user", "content": prompt}],
                                                    max_tokens=args.max_tokens, temperature=0, repeat_penalty=1.0,
                                                    logit_bias=NO_END, stream=True):
                yield chunk["choices"][0]["delta"].get("content") or ""

        sides["llama_cpp_python"] = raw_stream
    except ImportError:
        pass

    results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for stream in sides.values():  # warm-up: model pages in, first prompt read
        measure(stream("Say hello."))
    names = list(sides)
    for r in range(args.rounds):
        prompt = PROMPTS[r % len(PROMPTS)]
        for name in names[r % len(names):] + names[:r % len(names)]:
            results[name].append(measure(sides[name](prompt)))
        print(f"round {r + 1}: " + ", ".join(f"{n} {results[n][-1]['decode_tok_s']:.1f} tok/s, "
                                              f"ttft {results[n][-1]['ttft_s'] * 1000:.0f} ms" for n in names),
              file=sys.stderr)

    summary = {}
    for side, runs in results.items():
        ttft = [r["ttft_s"] * 1000 for r in runs]
        summary[side] = {
            "decode_tok_s": round(statistics.median(r["decode_tok_s"] for r in runs), 2),
            "total_tok_s": round(statistics.median(r["total_tok_s"] for r in runs), 2),
            "ttft_ms_p50": round(statistics.median(ttft), 1), "ttft_ms_p95": round(percentile(ttft, 95), 1),
            "tokens": [r["tokens"] for r in runs],
        }
    assert len({tuple(s["tokens"]) for s in summary.values()}) == 1, "sides generated different token counts"
    base = summary["engine_direct"]
    stall = [long_prompt_stall(settings, chunk, 256) for chunk in (settings.prompt_chunk_tokens, 2048)]
    print(f"long prompt beside three answers: {stall}", file=sys.stderr)
    write_results("generate", {
        "model": "smollm2 (SmolLM2-135M-Instruct Q4_1 GGUF)", "prompts": PROMPTS[:args.rounds],
        "max_tokens": args.max_tokens, "sampling": "greedy, repeat_penalty 1.0, special tokens banned",
        "threads": f"{threads} for decoding and {threads} for prompts, every side", "n_ctx": settings.context_length,
        "rounds": args.rounds, "sides": summary,
        "decode_tok_s_ratio_plait_over_engine": round(summary["plait"]["decode_tok_s"] / base["decode_tok_s"], 3),
        "total_tok_s_ratio_plait_over_engine": round(summary["plait"]["total_tok_s"] / base["total_tok_s"], 3),
        "ttft_ratio_plait_over_engine": round(summary["plait"]["ttft_ms_p50"] / base["ttft_ms_p50"], 3),
        "target": {"decode_tok_s_ratio_plait_over_engine": ">= 0.95"},
        "long_prompt_beside_three_answers": stall,
    })


if __name__ == "__main__":
    main()
