"""Thresholds of the embedding classifiers, chosen on one half of the data and reported on the other.

    python bench/thresholds.py    # → bench/results/thresholds.json

Zero-shot classification by cosine similarity turns similarities into probabilities with two priors
(plait.tasks.classifiers), used until a person calibrates on labelled texts of their own:

- COSINE_TEMPERATURE: the softmax temperature of single-label decisions (it sets how confident the
  probabilities are, so it decides calibration and the abstention threshold's meaning);
- COSINE_MIDPOINT: the similarity taken as even odds for one label on its own (multi-label decisions,
  p >= 0.5 ⇔ cosine >= midpoint); its slope is 1 / COSINE_TEMPERATURE.

And the abstention threshold the classify benchmark reports (answer only when p >= t).

Data: the 200 real mini 20-Newsgroups posts (alt.atheism vs sci.space, headers stripped to From, Subject
and Date), split in two stratified halves with a fixed seed: CHOOSE (values are picked here) and REPORT
(figures are reported here, for the values in the code and for those picked). The default embedder,
label names as the label texts. Splits are repeated over 5 seeds; the values picked on each seed's CHOOSE
half are reported on that seed's REPORT half, and the value written in the code is the median pick.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from _common import peak_rss_mb, write_results  # noqa: E402

TEMPERATURES = [round(t, 3) for t in np.arange(0.01, 0.151, 0.005)]
MIDPOINTS = [round(m, 3) for m in np.arange(0.0, 0.401, 0.01)]
ABSTAIN = [round(t, 2) for t in np.arange(0.5, 0.991, 0.01)]
TARGET_ACCURACY = 0.97  # abstention: the lowest threshold whose answered posts reach this accuracy
SEEDS = 5


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(scores: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    p = softmax(scores, temperature)[np.arange(len(gold)), gold]
    return float(-np.mean(np.log(np.clip(p, 1e-12, None))))


def ece(scores: np.ndarray, gold: np.ndarray, temperature: float) -> float:
    from plait.tasks.calibration import expected_calibration_error

    p = softmax(scores, temperature)
    return float(expected_calibration_error(p.max(axis=1), p.argmax(axis=1) == gold))


def multi_label_f1(scores: np.ndarray, gold: np.ndarray, midpoint: float) -> float:
    """Macro F1 of one independent yes/no decision per label (cosine >= midpoint)."""
    f1s = []
    for j in range(scores.shape[1]):
        pred = scores[:, j] >= midpoint
        truth = gold == j
        tp = float(np.sum(pred & truth))
        precision = tp / max(1.0, float(pred.sum()))
        recall = tp / max(1.0, float(truth.sum()))
        f1s.append(0.0 if tp == 0 else 2 * precision * recall / (precision + recall))
    return float(np.mean(f1s))


def abstention(scores: np.ndarray, gold: np.ndarray, temperature: float, threshold: float) -> dict[str, float]:
    p = softmax(scores, temperature)
    answered = p.max(axis=1) >= threshold
    right = p.argmax(axis=1) == gold
    return {"coverage": round(float(answered.mean()), 4),
            "accuracy_when_answering": round(float(right[answered].mean()), 4) if answered.any() else 0.0}


def split(gold: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    choose, report = [], []
    for label in np.unique(gold):
        idx = rng.permutation(np.flatnonzero(gold == label))
        choose.extend(idx[: len(idx) // 2])
        report.extend(idx[len(idx) // 2:])
    return np.array(sorted(choose)), np.array(sorted(report))


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from tests.corpora import newsgroups

    from plait.models.base import Embedder
    from plait.runtime import Runtime
    from plait.tasks import classifiers

    posts = newsgroups()
    labels = sorted({p.label for p in posts})
    gold = np.array([labels.index(p.label) for p in posts])
    rt = Runtime()
    embedder = rt.model(rt.settings.embed_model, Embedder)
    model = classifiers.PrototypeClassifier.zero_shot(embedder, labels, labels)
    scores = model.scores([p.text for p in posts])
    code_t, code_m = classifiers.COSINE_TEMPERATURE, classifiers.COSINE_MIDPOINT
    rows: list[dict[str, Any]] = []
    for seed in range(SEEDS):
        choose, report = split(gold, seed)
        t = min(TEMPERATURES, key=lambda x: (nll(scores[choose], gold[choose], x), x))
        m = max(MIDPOINTS, key=lambda x: (multi_label_f1(scores[choose], gold[choose], x), -abs(x - code_m)))
        reaching = [a for a in ABSTAIN if abstention(scores[choose], gold[choose], t, a)["accuracy_when_answering"]
                    >= TARGET_ACCURACY]
        a = reaching[0] if reaching else ABSTAIN[-1]
        rows.append({
            "seed": seed, "picked_on_choose": {"temperature": t, "midpoint": m, "abstain_at": a},
            "report_half": {
                "nll": {"picked": round(nll(scores[report], gold[report], t), 4),
                        "in_code": round(nll(scores[report], gold[report], code_t), 4)},
                "ece": {"picked": round(ece(scores[report], gold[report], t), 4),
                        "in_code": round(ece(scores[report], gold[report], code_t), 4)},
                "multi_label_macro_f1": {"picked": round(multi_label_f1(scores[report], gold[report], m), 4),
                                         "in_code": round(multi_label_f1(scores[report], gold[report], code_m), 4)},
                "abstain": {"picked": abstention(scores[report], gold[report], t, a),
                            "at_0.9_with_code_temperature": abstention(scores[report], gold[report], code_t, 0.9)},
            }})

    def median(key: str) -> float:
        return float(statistics.median(r["picked_on_choose"][key] for r in rows))

    def mean(path: tuple[str, ...]) -> float:
        values = []
        for r in rows:
            v: Any = r["report_half"]
            for k in path:
                v = v[k]
            values.append(v)
        return round(statistics.mean(values), 4)

    results = {
        "data": "gensim mini_newsgroup, 200 posts; stratified halves CHOOSE / REPORT, seeds 0-4",
        "embedder": embedder.spec.name, "in_code": {"COSINE_TEMPERATURE": code_t, "COSINE_MIDPOINT": code_m},
        "median_pick": {"temperature": median("temperature"), "midpoint": median("midpoint"),
                        "abstain_at": median("abstain_at")},
        "report_half_mean": {
            "ece_picked": mean(("ece", "picked")), "ece_in_code": mean(("ece", "in_code")),
            "f1_picked": mean(("multi_label_macro_f1", "picked")),
            "f1_in_code": mean(("multi_label_macro_f1", "in_code")),
            "abstain_coverage_picked": mean(("abstain", "picked", "coverage")),
            "abstain_accuracy_picked": mean(("abstain", "picked", "accuracy_when_answering")),
        },
        "per_seed": rows,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    write_results("thresholds", results)
    rt.close()


if __name__ == "__main__":
    main()
