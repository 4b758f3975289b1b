"""classify on the 200 real mini 20-Newsgroups posts (alt.atheism vs sci.space), headers stripped to From,
Subject and Date (the others name the newsgroup).

- zero-shot from the two label names as they are ('alt.atheism', 'sci.space'), and from short readable
  descriptions written once by hand (DESCRIPTIONS below), by embedding similarity (default embedder);
- zero-shot by the default LLM (SmolLM2-135M) scoring each label name, with and without contextual
  calibration, on a fixed stratified subset (``--llm-posts``; it takes seconds per post on 2 cores);
- few-shot with 8 examples per label, 5 seeds, evaluated on the 184 posts not used as examples:
  plait's nearest-centroid (similarity), logistic regression on the same embeddings, and the baseline
  TF-IDF + logistic regression trained on the same examples;
- calibration: expected calibration error of zero-shot probabilities before and after temperature
  scaling on the 16 examples of each seed; abstaining at 0.9.

Run: python bench/tasks_classify.py [--llm-posts 20] → bench/results/tasks_classify.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# llama.cpp's OpenMP threads wait passively instead of spinning: on a busy machine spinning threads make
# prompt evaluation many times slower (as the server does, see plait.serve.app).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tests.corpora import newsgroups  # noqa: E402

from _common import peak_rss_mb, timed, write_results  # noqa: E402
from plait.models.base import Embedder, EmbedKind  # noqa: E402
from plait.runtime import Runtime  # noqa: E402
from plait.tasks.calibration import expected_calibration_error  # noqa: E402
from plait.tasks.classifiers import Classification, PrototypeClassifier  # noqa: E402
from plait.tasks.classify import build_classifier, classify  # noqa: E402
from plait.tasks.llm_labels import LlmClassifier  # noqa: E402

LABELS = ("alt.atheism", "sci.space")
# Readable descriptions of the two newsgroups, written from their names (what each group is about),
# not tuned on the posts.
DESCRIPTIONS = {"alt.atheism": "atheism, religion and God", "sci.space": "space exploration, NASA and astronomy"}
SHOTS = 8
SEEDS = (0, 1, 2, 3, 4)


class CachedEmbedder(Embedder):
    """The real default embedder, remembering vectors so the many runs below embed each post once."""

    def __init__(self, inner: Embedder) -> None:
        self.inner, self.spec = inner, inner.spec
        self.dimensions, self.batch_size = inner.dimensions, inner.batch_size
        self.cache: dict[tuple[str, str], np.ndarray] = {}

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if (t, kind) not in self.cache]
        if missing:
            for text, vector in zip(missing, self.inner.embed_many(missing, kind=kind), strict=True):
                self.cache[(text, kind)] = vector
        return np.stack([self.cache[(t, kind)] for t in texts])


def accuracy(results: Sequence[Classification], gold: Sequence[str]) -> float:
    return float(np.mean([r.label == g for r, g in zip(results, gold, strict=True)]))


def ece(results: Sequence[Classification], gold: Sequence[str]) -> float:
    conf = np.array([r.scores[0].probability for r in results])
    right = np.array([r.scores[0].label == g for r, g in zip(results, gold, strict=True)])
    return expected_calibration_error(conf, right)


def split(labels: Sequence[str], seed: int) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    train: list[int] = []
    for label in LABELS:
        pool = [i for i, y in enumerate(labels) if y == label]
        train.extend(int(i) for i in rng.choice(pool, SHOTS, replace=False))
    chosen = set(train)
    return train, [i for i in range(len(labels)) if i not in chosen]


def tfidf_baseline(texts: Sequence[str], labels: Sequence[str], train: list[int], test: list[int]) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(sublinear_tf=True)
    x_train = vectorizer.fit_transform([texts[i] for i in train])
    model = LogisticRegression(max_iter=1000).fit(x_train, [labels[i] for i in train])
    predicted = model.predict(vectorizer.transform([texts[i] for i in test]))
    return float(np.mean([p == labels[i] for p, i in zip(predicted, test, strict=True)]))


def summary(values: list[float]) -> dict[str, object]:
    return {"mean": round(statistics.mean(values), 4), "std": round(statistics.pstdev(values), 4),
            "per_seed": [round(v, 4) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm-posts", type=int, default=20, help="posts for the LLM zero-shot run (0: skip)")
    args = parser.parse_args()

    posts = newsgroups()
    texts = [p.text for p in posts]
    gold = [p.label for p in posts]
    rt = Runtime()
    embedder = CachedEmbedder(rt.model(rt.settings.embed_model, Embedder))
    results: dict[str, object] = {"dataset": "gensim mini_newsgroup: 200 posts, alt.atheism vs sci.space, "
                                             "headers kept: From, Subject, Date",
                                  "embedder": embedder.spec.name}

    # Zero-shot by embedding similarity ------------------------------------------------------------
    names, seconds = timed(lambda: classify(texts, list(LABELS), model=embedder))
    results["embed_posts_per_second"] = round(len(texts) / seconds, 1)
    described = classify(texts, DESCRIPTIONS, model=embedder)
    templated = classify(texts, list(LABELS), template="a post about {label}", model=embedder)
    abstaining = classify(texts, list(LABELS), model=embedder, threshold=0.9)
    answered = [(r, g) for r, g in zip(abstaining, gold, strict=True) if not r.abstained]
    results["zero_shot"] = {
        "label_names": {"labels": list(LABELS), "accuracy": round(accuracy(names, gold), 4),
                        "ece": round(ece(names, gold), 4)},
        "descriptions": {"labels": DESCRIPTIONS, "accuracy": round(accuracy(described, gold), 4),
                         "ece": round(ece(described, gold), 4)},
        "template 'a post about {label}'": {"accuracy": round(accuracy(templated, gold), 4)},
        "abstain_below_0.9": {"coverage": round(len(answered) / len(gold), 4),
                              "accuracy_when_answering": round(float(np.mean([r.label == g for r, g in answered])), 4)
                              if answered else None},
        "target_accuracy": 0.93,
    }

    # Few-shot, 8 examples per label, 5 seeds ------------------------------------------------------
    runs: dict[str, list[float]] = {"plait_similarity": [], "plait_logistic": [], "baseline_tfidf_logreg": [],
                                    "plait_similarity_ece": [], "zero_shot_ece_uncalibrated": [],
                                    "zero_shot_ece_calibrated_on_examples": []}
    few_seconds = 0.0
    for seed in SEEDS:
        train, test = split(gold, seed)
        examples = [(texts[i], gold[i]) for i in train]
        test_texts, test_gold = [texts[i] for i in test], [gold[i] for i in test]
        start = time.perf_counter()
        similarity = build_classifier(list(LABELS), examples=examples, method="similarity", model=embedder)
        predicted = similarity.classify(test_texts)
        few_seconds += time.perf_counter() - start
        runs["plait_similarity"].append(accuracy(predicted, test_gold))
        runs["plait_similarity_ece"].append(ece(predicted, test_gold))
        logistic = build_classifier(list(LABELS), examples=examples, method="logistic", model=embedder)
        runs["plait_logistic"].append(accuracy(logistic.classify(test_texts), test_gold))
        runs["baseline_tfidf_logreg"].append(tfidf_baseline(texts, gold, train, test))
        zero = build_classifier(list(LABELS), model=embedder)
        assert isinstance(zero, PrototypeClassifier)
        runs["zero_shot_ece_uncalibrated"].append(ece(zero.classify(test_texts), test_gold))
        zero.calibrate([texts[i] for i in train], [gold[i] for i in train])
        runs["zero_shot_ece_calibrated_on_examples"].append(ece(zero.classify(test_texts), test_gold))
    plait_mean = statistics.mean(runs["plait_similarity"])
    base_mean = statistics.mean(runs["baseline_tfidf_logreg"])
    results["few_shot"] = {
        "examples_per_label": SHOTS, "seeds": list(SEEDS), "evaluated_on": "the 184 posts not used as examples",
        **{name: summary(values) for name, values in runs.items()},
        "accuracy_ratio_plait_similarity_to_baseline": round(plait_mean / base_mean, 3),
        "plait_similarity_seconds_per_seed": round(few_seconds / len(SEEDS), 2),
        "target_mean_accuracy": 0.95,
    }

    # Zero-shot by the LLM scoring each label ------------------------------------------------------
    if args.llm_posts > 0:
        rng = np.random.default_rng(0)
        subset = [int(i) for label in LABELS
                  for i in rng.choice([i for i, y in enumerate(gold) if y == label], args.llm_posts // 2,
                                      replace=False)]
        # By name, so the classifier re-acquires the model from the pool for each post (a long run would
        # otherwise outlast the pool's idle time).
        clf = build_classifier(list(LABELS), method="llm", model=rt.settings.chat_model, runtime=rt)
        assert isinstance(clf, LlmClassifier)
        generator = clf.generator
        subset_texts, subset_gold = [texts[i] for i in subset], [gold[i] for i in subset]
        scores, seconds = timed(lambda: clf.scores(subset_texts))
        bias = clf._bias if clf._bias is not None else np.zeros(len(LABELS))
        llm_results = {}
        for name, s in (("contextual_calibration", scores), ("raw_log_probabilities", scores + bias)):
            predicted = [LABELS[int(j)] for j in s.argmax(axis=1)]
            llm_results[name] = {"accuracy": round(float(np.mean([p == g for p, g in zip(predicted, subset_gold,
                                                                                         strict=True)])), 4),
                                 "share_predicted_first_label": round(
                                     float(np.mean([p == LABELS[0] for p in predicted])), 4)}
        results["zero_shot_llm"] = {"model": generator.spec.name, "labels": list(LABELS), "posts": len(subset),
                                    "text_tokens_per_post": clf.max_text_tokens,
                                    "seconds_per_post": round(seconds / len(subset), 2), **llm_results}

    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    write_results("tasks_classify", results)


if __name__ == "__main__":
    main()
