"""bench/compress: plait's compressed variants against their originals, measured side by side in one run.

    python bench/compress.py [--skip classifier,embedder,chat] [--epochs N]

Three parts, each a ``plait compress`` report (baseline = the original model, measured in the same process,
interleaved with its variants; peak memory from one fresh process per model):

- classifier: MiniLM-L6 fine-tuned by ``plait tune`` (full fine-tune) on 100 of the 200 real mini
  20-Newsgroups posts; measured on the other 100. Variants: ONNX int8, PyTorch int8, ONNX fp32, 30%
  magnitude pruning, 30% of heads and of feed-forward neurons removed, half the layers dropped (these
  three without repair training, to show what structure alone costs), a 2-layer student distilled on the
  100 training posts, that student exported to ONNX (fp32) and as ONNX int8, and a 1-layer student.
- embedder: all-MiniLM-L6-v2 (sentence-transformers, fp32) against its ONNX int8 and PyTorch int8 variants
  on the Lee known-item retrieval test (query = an article's first sentence, target = the rest; MRR@10).
- chat: the packaged SmolLM2-135M-Instruct Q4_1 GGUF against every type llama.cpp requantizes it to here:
  perplexity on the Lee news articles (8 windows of 512 tokens, second halves scored) and tokens/s.

Also the bad-input cases: a method for another kind of model, an evaluation file with the wrong labels,
a budget nothing meets; each must fail with a clear message and register nothing.
Results: bench/results/compress.json. Every run builds every variant in a fresh home (deleted afterwards;
--keep-home keeps it, with each part's HTML report): no figure comes from a model an earlier run built.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402
from plait.compress.measure import Timing  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CLASSIFIER_METHODS = ["onnx-int8", "torch-int8", "onnx", "prune", "prune-heads", "prune-neurons", "drop-layers"]
# Timing: 20 texts one by one and 2 batches of 32 per model; chat: 2 timed generations of 64 tokens each,
# perplexity on 8 windows of 512 tokens (4,096 tokens, 2,048 scored). Enough for steady ratios, and the
# bench stays within ~20 minutes on 2 cores.
TIMING = Timing(latency_texts=20, rounds=2)
CHAT_TIMING = Timing(rounds=2, chat_tokens=64, perplexity_windows=8)
GGUF = ["gguf-q2_k", "gguf-q3_k_m", "gguf-q4_0", "gguf-iq4_nl", "gguf-q4_k_m", "gguf-q5_0", "gguf-q5_1",
        "gguf-q5_k_m", "gguf-q6_k", "gguf-q8_0", "gguf-f16"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rows(report: Any) -> dict[str, Any]:
    return {r["label"]: r for r in report.as_dict()["rows"]}


def split_posts(seed: int = 0) -> tuple[list[Any], list[Any]]:
    """Half of each newsgroup for training, the other half held out."""
    from tests.corpora import newsgroups

    train, test = [], []
    for label in sorted({p.label for p in newsgroups()}):
        posts = [p for p in newsgroups() if p.label == label]
        random.Random(seed).shuffle(posts)
        train += posts[: len(posts) // 2]
        test += posts[len(posts) // 2:]
    return train, test


def made(rt: Any, parent: str, methods: list[str], seconds: dict[str, float], suffix: str = "",
         **kwargs: Any) -> list[str]:
    """The variants of ``parent`` by ``methods``, built now (the bench's home is fresh: nothing is reused)."""
    from plait.compress.variants import compress, default_name

    resolved = rt.catalog.get(parent).name  # "news" is its latest version, "news@2"
    names = [default_name(resolved, m) + suffix for m in methods]
    for method, name in zip(methods, names, strict=True):
        start = time.perf_counter()
        compress(resolved, [method], names=[name], measure_variants=False, runtime=rt, log=log, **kwargs)
        seconds[name] = round(time.perf_counter() - start, 1)
    return names


def classifier_part(rt: Any, epochs: int) -> dict[str, Any]:
    from plait.adapt.config import TuneConfig
    from plait.adapt.datasets import Dataset, Example
    from plait.adapt.tune import tune
    from plait.compress.data import TrainSet, classifier_eval
    from plait.compress.methods import MethodParams
    from plait.compress.variants import compare

    train, test = split_posts()
    labels = sorted({p.label for p in train})
    dataset = Dataset("classify", tuple(Example(p.text, (p.label,)) for p in train), tuple(labels), "newsgroups-train")
    start = time.perf_counter()
    tuned = tune("news", dataset, TuneConfig(method="finetune", max_length=128, seed=0), runtime=rt, say=log)
    teacher: dict[str, Any] = {"name": tuned.model, "tune_seconds": round(time.perf_counter() - start, 1),
                               "tune_test_metrics": tuned.metrics}
    log(f"teacher {teacher['name']}: accuracy on its own test split {teacher['tune_test_metrics'].get('accuracy')}")
    train_set = TrainSet(tuple(p.text for p in train), tuple(labels.index(p.label) for p in train),
                         "newsgroups-train (100 posts)")
    params = MethodParams(amount=0.3, layers=2, epochs=epochs, max_length=128)
    seconds: dict[str, float] = {}
    names = made(rt, teacher["name"], CLASSIFIER_METHODS, seconds, params=params)
    names += made(rt, teacher["name"], ["distill"], seconds, params=params, train=train_set)
    student = rt.catalog.get(names[-1])
    names += made(rt, student.name, ["onnx", "onnx-int8"], seconds)  # the student as deployed: exported, quantized
    # A 1-layer student too: the 2-layer one keeps a third of the encoder, so with the embeddings and the
    # tokenizer it cannot quite reach 3x at batch 1.
    one_layer = params.model_copy(update={"layers": 1})
    names += made(rt, teacher["name"], ["distill"], seconds, suffix="-1layer", params=one_layer, train=train_set)
    eval_set = classifier_eval([p.text for p in test], [p.label for p in test], "newsgroups-test (100 held-out posts)")
    report, files = compare(teacher["name"], names, eval_data=eval_set, timing=TIMING, runtime=rt, log=log)
    print(report.text(), flush=True)
    by = rows(report)
    teacher["accuracy_on_held_out"] = by[f"{teacher['name']} (original)"]["quality"]["accuracy"]

    base = teacher["name"].replace("@", "-v")  # variant names: news@1 → news-v1-onnx-int8…
    variants = {"onnx_int8": "onnx-int8", "student": "distill", "student_onnx": "distill-onnx",
                "student_onnx_int8": "distill-onnx-int8", "student_1layer": "distill-1layer"}
    checks: dict[str, Any] = {}
    for key, suffix in variants.items():
        vs = by[f"{base}-{suffix}"]["vs_original"]
        checks[f"{key}_faster_x"] = vs["faster_x"]
        checks[f"{key}_accuracy_change_pts"] = vs["quality_change"]
    checks["onnx_int8_smaller_x"] = by[f"{base}-onnx-int8"]["vs_original"]["smaller_x"]
    checks["prune30_accuracy_change_pts"] = by[f"{base}-prune"]["vs_original"]["quality_change"]
    # The students that stay within 3 points; the fastest of them answers "a student >= 3x faster".
    students = [(checks[f"{k}_faster_x"], k) for k in ("student", "student_onnx", "student_1layer")
                if checks[f"{k}_accuracy_change_pts"] >= -3]
    checks["fastest_student_within_3pts"] = max(students)[1] if students else None
    checks["must_show"] = {
        "onnx_int8_2x_faster": checks["onnx_int8_faster_x"] >= 2,
        "onnx_int8_3x_smaller": checks["onnx_int8_smaller_x"] >= 3,
        "onnx_int8_within_1pt": abs(checks["onnx_int8_accuracy_change_pts"]) <= 1,
        "prune30_within_2pts": checks["prune30_accuracy_change_pts"] >= -2,
        "student_3x_faster_within_3pts": bool(students) and max(students)[0] >= 3,
    }
    return {"teacher": teacher, "build_seconds": seconds,
            "student": {"layers": student.provenance["steps"][0].get("layers_kept"),
                        "losses": student.provenance["steps"][0].get("losses")},
            "report": report.as_dict(), "report_html": str(files["html"]),
            "checks": checks}


def lee_eval(kind: str) -> Any:
    """The 300 Lee articles as the evaluation set (``plait compress`` measures on the person's index by
    default; the bench's home has none): known-item search for an embedder, perplexity for a chat model."""
    from tests.corpora import lee_articles

    from plait.compress.data import EvalSet, known_item

    articles = list(lee_articles())
    source = "Lee news articles (gensim)"
    return known_item(articles, source) if kind == "embedder" else EvalSet("chat", tuple(articles), source=source)


def embedder_part(rt: Any) -> dict[str, Any]:
    from plait.compress.variants import compare

    seconds: dict[str, float] = {}
    names = made(rt, "minilm", ["onnx-int8", "torch-int8"], seconds)
    report, files = compare("minilm", names, eval_data=lee_eval("embedder"), timing=TIMING, runtime=rt, log=log)
    print(report.text(), flush=True)
    by = rows(report)
    int8 = by["minilm-onnx-int8"]
    return {"report": report.as_dict(), "report_html": str(files["html"]), "build_seconds": seconds,
            "checks": {"onnx_int8_mrr_change_pts": int8["vs_original"]["quality_change"],
                       "onnx_int8_faster_x": int8["vs_original"]["faster_x"],
                       "onnx_int8_throughput_x": int8["vs_original"]["throughput_x"],
                       "onnx_int8_cosine_fidelity": int8["quality"].get("cosine_fidelity")}}


def chat_part(rt: Any) -> dict[str, Any]:
    from plait.compress.variants import compare

    produced: list[str] = []
    failed: dict[str, str] = {}
    seconds: dict[str, float] = {}
    for method in GGUF:
        try:
            produced += made(rt, "smollm2", [method], seconds)
        except Exception as exc:  # noqa: BLE001 - a type llama.cpp cannot make from Q4_1 is a result, not a crash
            failed[method] = f"{type(exc).__name__}: {exc}"
    report, files = compare("smollm2", produced, eval_data=lee_eval("chat"), timing=CHAT_TIMING, runtime=rt,
                            log=log)
    print(report.text(), flush=True)
    return {"report": report.as_dict(), "report_html": str(files["html"]), "not_produced": failed,
            "build_seconds": seconds,
            "perplexity": {r["label"]: r["quality"]["perplexity"] for r in report.as_dict()["rows"]},
            "tokens_per_s": {r["label"]: r["throughput"] for r in report.as_dict()["rows"]}}


def bad_input_part(rt: Any, have_classifier: bool) -> dict[str, Any]:
    from tests.corpora import lee_articles

    from plait.compress.budget import compress_to_budget
    from plait.compress.data import known_item
    from plait.compress.variants import compress
    from plait.errors import PlaitError

    out: dict[str, Any] = {}
    before = set(rt.catalog.names())

    def attempt(key: str, fn: Any) -> None:
        try:
            fn()
            out[key] = {"error": None}
        except PlaitError as exc:
            out[key] = {"error": f"{type(exc).__name__}: {exc}"}

    attempt("method_for_another_kind", lambda: compress("smollm2", ["prune"], runtime=rt, log=log))
    if have_classifier:
        wrong = Path(tempfile.mkdtemp()) / "wrong-labels.csv"
        wrong.write_text("text,label\nThe shuttle launch slipped again,sci.space\nBest pasta sauce?,cooking\n"
                         "Is there a god?,alt.atheism\n")
        attempt("eval_with_wrong_labels", lambda: compress("news", ["onnx-int8"], names=["news-wrong-labels"],
                                                           eval_data=wrong, runtime=rt, log=log))
    small = known_item(lee_articles()[:20], "20 Lee articles")
    attempt("budget_nobody_meets", lambda: compress_to_budget("minilm", budget_ms=0.5, budget_mb=5, eval_data=small,
                                                              methods=["onnx-int8", "torch-int8"],
                                                              timing=Timing(latency_texts=10, rounds=1),
                                                              runtime=rt, log=log))
    out["nothing_registered"] = set(rt.catalog.names()) == before
    out["no_partial_folders"] = not any(p.name.endswith(".partial") for p in rt.settings.models_dir.iterdir())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: classifier, embedder, chat")
    parser.add_argument("--epochs", type=int, default=6, help="distillation / repair epochs")
    parser.add_argument("--keep-home", action="store_true",
                        help="keep the fresh home the bench builds every variant in (to look at its reports)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads per model (default 1: on a shared machine, multi-threaded PyTorch waits "
                             "on descheduled threads and its timings stop meaning anything)")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}

    from plait.runtime import Runtime
    from plait.settings import load_settings

    # Always a fresh home, with its own models folder: every variant (and minilm-q8) is built by this run, so
    # no figure comes from a model an earlier run left behind.
    home = Path(tempfile.mkdtemp(prefix="plait-bench-compress-"))
    rt = Runtime(load_settings(home=home, threads=args.threads))
    load_start = os.getloadavg()[0]
    results: dict[str, Any] = {"home": str(home), "threads": rt.settings.threads, "load_1min_at_start": load_start}
    start = time.perf_counter()
    if "classifier" not in skip:
        log("classifier: MiniLM fine-tuned on mini 20-Newsgroups, and its variants")
        results["classifier"] = classifier_part(rt, args.epochs)
    if "embedder" not in skip:
        log("embedder: all-MiniLM-L6-v2 and its int8 variants on Lee known-item retrieval")
        results["embedder"] = embedder_part(rt)
    if "chat" not in skip:
        log("chat: SmolLM2 requantized by llama.cpp")
        results["chat"] = chat_part(rt)
    log("bad input")
    results["bad_input"] = bad_input_part(rt, "classifier" not in skip)
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["load_1min_at_end"] = os.getloadavg()[0]
    results["fresh_home"] = True
    rt.close()
    if not args.keep_home:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    write_results("compress", results)


if __name__ == "__main__":
    main()
