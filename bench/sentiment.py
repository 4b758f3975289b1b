"""Sentiment on real reviews available offline: VADER against plait's embedding method, to choose the default.

Data: Drugs.com patient reviews (a train split of 600 and a test split of 379, rated 1-10; positive 7-10,
negative 1-4, neutral 5-6 left out of the binary score) and 200 movie-review sentences (Pang & Lee),
both from installed packages (see tests/corpora.py).

Each method scores every text with plait's own ``sentiment()`` (a document's score is the length-weighted mean
of its sentences'). Reported per method:

- accuracy of its own labels as plait returns them (positive / negative / neutral; neutral counts as wrong
  on a positive-or-negative review);
- balanced binary accuracy with one threshold on the score, chosen on the drug reviews' train split only,
  then applied unchanged to the drug test split and the movie sentences (no threshold is chosen on the data
  it is reported on);
- speed (texts/s), same texts, same process, after a warm-up.

    python bench/sentiment.py        # writes bench/results/sentiment.json
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.corpora import Review, drug_reviews, movie_review_sentences  # noqa: E402

from _common import make_home, write_results  # noqa: E402
from plait.runtime import Runtime  # noqa: E402
from plait.settings import load_settings  # noqa: E402
from plait.tasks.sentiment import sentiment  # noqa: E402

METHODS = ("vader", "embedding")


def scored(reviews: tuple[Review, ...], method: str, rt: Runtime) -> tuple[list[tuple[float, str, str]], float]:
    """(score, plait's label, truth) per review, and texts per second."""
    start = time.perf_counter()
    out = []
    for r in reviews:
        result = sentiment(r.text, method=method, runtime=rt)  # type: ignore[arg-type]
        out.append((result.score, result.label, r.label))
    return out, len(reviews) / (time.perf_counter() - start)


def balanced_accuracy(rows: list[tuple[float, str, str]], threshold: float) -> float:
    pos = [s > threshold for s, _, t in rows if t == "positive"]
    neg = [s <= threshold for s, _, t in rows if t == "negative"]
    return (sum(pos) / len(pos) + sum(neg) / len(neg)) / 2


def best_threshold(rows: list[tuple[float, str, str]]) -> float:
    binary = [r for r in rows if r[2] != "neutral"]
    candidates = sorted({round(s, 4) for s, _, _ in binary})
    cuts = [(a + b) / 2 for a, b in zip(candidates, candidates[1:], strict=False)] or [0.0]
    return max(cuts, key=lambda c: (balanced_accuracy(binary, c), -abs(c)))


def label_accuracy(rows: list[tuple[float, str, str]]) -> float:
    binary = [r for r in rows if r[2] != "neutral"]
    return sum(label == truth for _, label, truth in binary) / len(binary)


def main() -> None:
    import tempfile

    rt = Runtime(load_settings(home=make_home(Path(tempfile.mkdtemp(prefix="plait-bench-sentiment-")), "home")))
    data = {"drug_train": len(drug_reviews("train")), "drug_test": len(drug_reviews("test")),
            "movie_sentences": len(movie_review_sentences())}
    results: dict[str, Any] = {"load_1min_start": os.getloadavg()[0], "embed_model": rt.settings.embed_model,
                               "data": data}
    for method in METHODS:
        sentiment("A warm-up sentence. It loads the model.", method=method, runtime=rt)  # type: ignore[arg-type]
        train, _ = scored(drug_reviews("train"), method, rt)
        test, speed = scored(drug_reviews("test"), method, rt)
        movies, movie_speed = scored(movie_review_sentences(), method, rt)
        threshold = best_threshold(train)
        results[method] = {
            "threshold_chosen_on_drug_train": round(threshold, 4),
            "drug_test": {"balanced_accuracy": round(balanced_accuracy([r for r in test if r[2] != "neutral"],
                                                                       threshold), 3),
                          "balanced_accuracy_at_0": round(balanced_accuracy([r for r in test if r[2] != "neutral"],
                                                                            0.0), 3),
                          "label_accuracy": round(label_accuracy(test), 3), "texts_per_s": round(speed, 1)},
            "movie_sentences": {"balanced_accuracy": round(balanced_accuracy(movies, threshold), 3),
                                "balanced_accuracy_at_0": round(balanced_accuracy(movies, 0.0), 3),
                                "label_accuracy": round(label_accuracy(movies), 3),
                                "texts_per_s": round(movie_speed, 1)},
        }
        print(method, results[method], file=sys.stderr)
    mean = {m: (results[m]["drug_test"]["balanced_accuracy"] + results[m]["movie_sentences"]["balanced_accuracy"]) / 2
            for m in METHODS}
    results["better_on_held_out_mean"] = max(mean, key=lambda m: mean[m])
    results["held_out_mean_balanced_accuracy"] = {m: round(v, 3) for m, v in mean.items()}
    results["load_1min_end"] = os.getloadavg()[0]
    rt.close()
    write_results("sentiment", results)


if __name__ == "__main__":
    main()
