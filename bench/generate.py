"""bench/generate: plait's generation against raw llama-cpp-python on the same GGUF, prompt and settings.

    python bench/generate.py [--rounds 5] [--max-tokens 128]

Both sides load SmolLM2-135M-Instruct (the packaged GGUF) with the same context size and threads, and
stream the same chat request (temperature 0, fixed seed), alternating for several rounds in one process.
Reported per side: time to first token and decode tokens/s (tokens after the first / time after the
first), medians over rounds; the ratio is plait over raw. Results: bench/results/generate.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import percentile, write_results  # noqa: E402

PROMPT = "Explain in a short paragraph why regular exercise is good for health."


def measure(stream: Iterator[str]) -> dict[str, float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()

    import llama_cpp

    from plait.models.base import GenerationOptions, GenerationRequest, Message, TextGenerator
    from plait.models.catalog import BUILTINS
    from plait.runtime import Runtime
    from plait.settings import load_settings

    settings = load_settings()
    path = str(BUILTINS["smollm2"].local_path())
    raw = llama_cpp.Llama(model_path=path, n_ctx=settings.context_length, n_threads=settings.threads, verbose=False)
    ours = Runtime(settings).model("smollm2", TextGenerator)
    messages = [{"role": "user", "content": PROMPT}]

    def raw_stream() -> Iterator[str]:
        for chunk in raw.create_chat_completion(messages=messages, max_tokens=args.max_tokens, temperature=0,
                                                seed=7, stream=True):
            yield chunk["choices"][0]["delta"].get("content") or ""

    def plait_stream() -> Iterator[str]:
        request = GenerationRequest(messages=(Message("user", PROMPT),),
                                    options=GenerationOptions(max_tokens=args.max_tokens, temperature=0, seed=7))
        for delta in ours.stream(request):
            yield delta.text

    results: dict[str, list[dict[str, float]]] = {"llama-cpp-python": [], "plait": []}
    measure(raw_stream())  # warm-up both
    measure(plait_stream())
    for r in range(args.rounds):
        results["llama-cpp-python"].append(measure(raw_stream()))
        results["plait"].append(measure(plait_stream()))
        print(f"round {r + 1}: raw {results['llama-cpp-python'][-1]['decode_tok_s']:.1f} tok/s, "
              f"plait {results['plait'][-1]['decode_tok_s']:.1f} tok/s", file=sys.stderr)

    summary = {}
    for side, runs in results.items():
        ttft = [r["ttft_s"] * 1000 for r in runs]
        summary[side] = {
            "decode_tok_s": statistics.median(r["decode_tok_s"] for r in runs),
            "total_tok_s": statistics.median(r["total_tok_s"] for r in runs),
            "ttft_ms_p50": statistics.median(ttft), "ttft_ms_p95": percentile(ttft, 95),
            "tokens": statistics.median(r["tokens"] for r in runs), "runs": runs,
        }
    write_results("generate", {
        "model": "smollm2 (SmolLM2-135M-Instruct Q4_1 GGUF)", "prompt": PROMPT, "max_tokens": args.max_tokens,
        "threads": settings.threads, "n_ctx": settings.context_length, "rounds": args.rounds,
        "baseline": summary["llama-cpp-python"], "plait": summary["plait"],
        "decode_tok_s_ratio": summary["plait"]["decode_tok_s"] / summary["llama-cpp-python"]["decode_tok_s"],
        "ttft_ratio": summary["plait"]["ttft_ms_p50"] / summary["llama-cpp-python"]["ttft_ms_p50"],
        "target": {"decode_tok_s_ratio": 0.95},
    })


if __name__ == "__main__":
    main()
