"""How good a tuned model is: classification and regression metrics, and decision thresholds.

Classification: accuracy, macro-F1 (every label counts the same, which is what matters when one label
is rare), per-label precision/recall/F1, the confusion matrix and the expected calibration error (are
the probabilities honest?). Multi-label: micro- and macro-F1 and per-label figures. Regression: RMSE,
MAE and R².

Decision thresholds (:func:`tune_thresholds`) are chosen on the validation set, never on the test set.
For single-label models each label gets a threshold ``t`` (they sum to 1) and the decision is
``argmax(p / t)``: equal thresholds are the plain argmax, and with two labels ``t`` of the positive
label is exactly the usual "predict positive when p >= t". Multi-label models get one threshold per
label on its own probability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from plait.errors import MissingDependency

if TYPE_CHECKING:
    import numpy as np

GRID = tuple(round(0.02 * i, 2) for i in range(1, 50))  # 0.02 … 0.98


def _sklearn_metrics() -> Any:
    try:
        import sklearn.metrics
    except ImportError as exc:
        raise MissingDependency("model evaluation", extra="adapt", package="scikit-learn") from exc
    return sklearn.metrics


@dataclass(frozen=True)
class LabelMetrics:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class ClassificationReport:
    labels: tuple[str, ...]
    accuracy: float
    macro_f1: float
    per_label: dict[str, LabelMetrics]
    confusion: list[list[int]]  # rows: true label, columns: predicted, in ``labels`` order
    ece: float  # expected calibration error of the top probability
    micro_f1: float | None = None  # multi-label only
    thresholds: dict[str, float] = field(default_factory=dict)

    def scalars(self) -> dict[str, float]:
        out = {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "ece": self.ece}
        if self.micro_f1 is not None:
            out["micro_f1"] = self.micro_f1
        for label, m in self.per_label.items():
            out[f"recall/{label}"] = m.recall
            out[f"precision/{label}"] = m.precision
        return out

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RegressionReport:
    rmse: float
    mae: float
    r2: float
    n: int

    def scalars(self) -> dict[str, float]:
        return {"rmse": self.rmse, "mae": self.mae, "r2": self.r2}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(proba: np.ndarray, thresholds: Sequence[float] | None = None) -> np.ndarray:
    """Single-label decisions: ``argmax(p / t)`` (plain argmax when ``thresholds`` is None)."""
    import numpy as np

    if thresholds is None:
        return np.argmax(proba, axis=1)
    t = np.asarray(thresholds, dtype=np.float64)
    return np.argmax(proba / np.maximum(t, 1e-9)[None, :], axis=1)


def classification_report(labels: Sequence[str], y_true: Sequence[int] | np.ndarray, proba: np.ndarray,
                          thresholds: Sequence[float] | None = None) -> ClassificationReport:
    import numpy as np

    from plait.tasks.calibration import expected_calibration_error

    m = _sklearn_metrics()
    y = np.asarray(y_true, dtype=np.int64)
    k = len(labels)
    pred = decide(proba, thresholds)
    p, r, f, s = m.precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=0)
    per_label = {label: LabelMetrics(float(p[j]), float(r[j]), float(f[j]), int(s[j]))
                 for j, label in enumerate(labels)}
    confusion = m.confusion_matrix(y, pred, labels=list(range(k))).tolist()
    confidence = proba[np.arange(len(pred)), pred] if len(pred) else np.zeros(0)
    return ClassificationReport(
        labels=tuple(labels), accuracy=float((pred == y).mean()) if len(y) else 0.0,
        macro_f1=float(np.mean(f)) if k else 0.0, per_label=per_label, confusion=confusion,
        ece=expected_calibration_error(confidence, pred == y),
        thresholds=dict(zip(labels, map(float, thresholds), strict=True)) if thresholds is not None else {},
    )


def multilabel_report(labels: Sequence[str], y_true: np.ndarray, proba: np.ndarray,
                      thresholds: Sequence[float] | None = None) -> ClassificationReport:
    import numpy as np

    from plait.tasks.calibration import expected_calibration_error

    m = _sklearn_metrics()
    t = np.asarray(thresholds if thresholds is not None else [0.5] * len(labels))
    pred = (proba >= t[None, :]).astype(int)
    truth = np.asarray(y_true).astype(int)
    p, r, f, s = m.precision_recall_fscore_support(truth, pred, zero_division=0)
    per_label = {label: LabelMetrics(float(p[j]), float(r[j]), float(f[j]), int(s[j]))
                 for j, label in enumerate(labels)}
    # Per label: [[true negatives, false positives], [false negatives, true positives]], flattened by label.
    confusion = [cm.ravel().tolist() for cm in m.multilabel_confusion_matrix(truth, pred)]
    # Calibration of each independent yes/no decision.
    confidence = np.where(pred == 1, proba, 1 - proba).ravel()
    return ClassificationReport(
        labels=tuple(labels), accuracy=float((pred == truth).all(axis=1).mean()),  # exact-match ratio
        macro_f1=float(np.mean(f)), per_label=per_label, confusion=confusion,
        ece=expected_calibration_error(confidence, (pred == truth).ravel()),
        micro_f1=float(m.f1_score(truth, pred, average="micro", zero_division=0)),
        thresholds=dict(zip(labels, map(float, t), strict=True)),
    )


def regression_report(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> RegressionReport:
    import numpy as np

    y = np.asarray(y_true, dtype=np.float64)
    yhat = np.asarray(y_pred, dtype=np.float64)
    err = yhat - y
    total = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
    r2 = 1.0 - float((err ** 2).sum()) / total if total > 0 else 0.0
    return RegressionReport(float(np.sqrt((err ** 2).mean())), float(np.abs(err).mean()), r2, len(y))


def _macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    import numpy as np

    scores = []
    for j in range(k):
        tp = float(((pred == j) & (y == j)).sum())
        fp = float(((pred == j) & (y != j)).sum())
        fn = float(((pred != j) & (y == j)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def _middle_of_best(scores: list[float], values: Sequence[float]) -> float:
    # Many thresholds tie on a small validation set; the middle of the best run generalises better
    # than its edge.
    best = max(scores)
    winners = [v for v, s in zip(values, scores, strict=True) if s >= best - 1e-12]
    return winners[len(winners) // 2]


def tune_thresholds(proba: np.ndarray, y_true: Sequence[int] | np.ndarray, *, rounds: int = 3) -> list[float]:
    """Per-label thresholds for ``argmax(p / t)`` that maximise macro-F1 on validation data."""
    import numpy as np

    y = np.asarray(y_true, dtype=np.int64)
    k = proba.shape[1]
    if k == 2:
        scores = [_macro_f1(y, decide(proba, [1 - c, c]), 2) for c in GRID]
        best = _middle_of_best(scores, GRID)
        return [1 - best, best]
    # Coordinate ascent on each label's threshold, the others fixed, renormalised to sum to 1.
    t = np.full(k, 1.0 / k)
    candidates = [c / k for c in (0.25, 0.4, 0.55, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0, 2.5, 3.0)]
    for _ in range(rounds):
        for j in range(k):
            scores = []
            for c in candidates:
                trial = t.copy()
                trial[j] = c
                scores.append(_macro_f1(y, decide(proba, trial / trial.sum()), k))
            t[j] = _middle_of_best(scores, candidates)
            t = t / t.sum()
    return [float(v) for v in t]


def tune_multilabel_thresholds(proba: np.ndarray, y_true: np.ndarray) -> list[float]:
    """One threshold per label maximising that label's F1 on validation data (0.5 when it never occurs)."""
    import numpy as np

    out = []
    truth = np.asarray(y_true).astype(bool)
    for j in range(proba.shape[1]):
        if not truth[:, j].any():
            out.append(0.5)
            continue
        scores = []
        for t in GRID:
            pred = proba[:, j] >= t
            tp = float((pred & truth[:, j]).sum())
            denom = float(pred.sum() + truth[:, j].sum())
            scores.append(2 * tp / denom if denom else 0.0)
        out.append(_middle_of_best(scores, GRID))
    return out
