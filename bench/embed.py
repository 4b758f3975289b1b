"""bench/embed: plait's default embedding path against SentenceTransformer.encode, same model, same texts.

    python bench/embed.py [--rounds 3] [--limit N]

The baseline is all-MiniLM-L6-v2 in sentence-transformers (PyTorch, fp32, encode's defaults); plait's side
is ``plait.embed`` with the default embedder (minilm-q8: the same model as int8 ONNX). Each side runs in
its own subprocess (so peak memory is its own), alternating for several rounds; throughput is the median.
Fidelity is the cosine between the two sides' vectors for each text. Results: bench/results/embed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, timed, write_results  # noqa: E402


def texts(limit: int | None) -> list[str]:
    from tests.corpora import lee_sentences

    items = list(lee_sentences())
    return items[:limit] if limit else items


def run_side(side: str, limit: int | None, out: Path) -> None:
    import numpy as np

    items = texts(limit)
    if side == "sentence-transformers":
        import torch
        from sentence_transformers import SentenceTransformer

        from plait.models.catalog import BUILTINS
        from plait.settings import load_settings

        torch.set_num_threads(load_settings().threads)
        model = SentenceTransformer(str(BUILTINS["minilm"].local_path()), device="cpu")
        model.encode(items[:64])  # warm-up
        vectors, seconds = timed(lambda: model.encode(items, normalize_embeddings=True))
        name = "minilm (sentence-transformers, torch fp32)"
    else:
        import plait

        runtime = plait.get_runtime()
        name = runtime.settings.embed_model
        plait.embed(items[:64])  # warm-up (and, the first time, builds the model)
        vectors, seconds = timed(lambda: plait.embed(items))
    np.save(out.with_suffix(".npy"), np.asarray(vectors, dtype=np.float32))
    out.write_text(json.dumps({"model": name, "seconds": seconds, "texts": len(items), "peak_rss_mb": peak_rss_mb()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N texts")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        run_side(args.side, args.limit, Path(args.out))
        return

    import numpy as np

    sides = ["sentence-transformers", "plait"]
    runs: dict[str, list[dict]] = {s: [] for s in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for side in sides:
                out = Path(tmp) / f"{side}-{r}.json"
                cmd = [sys.executable, __file__, "--side", side, "--out", str(out)]
                if args.limit:
                    cmd += ["--limit", str(args.limit)]
                subprocess.run(cmd, check=True)
                runs[side].append(json.loads(out.read_text()))
                print(f"round {r + 1} {side}: {runs[side][-1]['texts'] / runs[side][-1]['seconds']:.0f} texts/s",
                      file=sys.stderr)
        base = np.load(Path(tmp) / "sentence-transformers-0.npy")
        ours = np.load(Path(tmp) / "plait-0.npy")
    cosine = (base * ours).sum(axis=1)
    n = runs["plait"][0]["texts"]
    result = {}
    for side in sides:
        rates = [n / run["seconds"] for run in runs[side]]
        result[side] = {"model": runs[side][0]["model"], "texts_per_s": statistics.median(rates),
                        "texts_per_s_all": rates, "peak_rss_mb": max(run["peak_rss_mb"] for run in runs[side])}
    write_results("embed", {
        "texts": n, "corpus": "Lee news corpus sentences (gensim)", "rounds": args.rounds,
        "baseline": result["sentence-transformers"], "plait": result["plait"],
        "throughput_ratio": result["plait"]["texts_per_s"] / result["sentence-transformers"]["texts_per_s"],
        "peak_memory_ratio": result["plait"]["peak_rss_mb"] / result["sentence-transformers"]["peak_rss_mb"],
        "fidelity": {"mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min()),
                     "p5_cosine": float(np.percentile(cosine, 5))},
        "target": {"throughput_ratio": 2.0},
    })


if __name__ == "__main__":
    main()
