"""Turning raw classifier scores into calibrated probabilities.

Raw scores (cosine similarities, sequence log-probabilities) rank labels well but are not probabilities:
cosine similarities of sentence embeddings sit in a narrow band, so a plain softmax over them says 0.5
for everything. Two standard fixes, each fitted on labelled examples:

- :class:`TemperatureScaling` (single-label): ``softmax(scores / T)``; one parameter, keeps the ranking
  (Guo et al., 2017, "On Calibration of Modern Neural Networks").
- :class:`PlattScaling` (multi-label): per label ``sigmoid(a * score + b)`` (Platt, 1999).

Without labelled examples a classifier uses a documented prior (e.g. T=0.025 for cosine similarity:
``classifiers.COSINE_TEMPERATURE``); :func:`expected_calibration_error` measures how far probabilities are
from observed accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plait.errors import InputError, MissingDependency

if TYPE_CHECKING:
    import numpy as np


def require_sklearn(feature: str) -> Any:
    """scikit-learn (and SciPy, which it brings) or a clear error naming the extra to install."""
    try:
        import scipy.optimize  # noqa: F401 - imported here so a missing SciPy fails in the same place
        import sklearn.linear_model
    except ImportError as exc:
        raise MissingDependency(feature, extra="classify", package="scikit-learn") from exc
    return sklearn.linear_model


def softmax(z: np.ndarray) -> np.ndarray:
    import numpy as np

    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(z: np.ndarray) -> np.ndarray:
    import numpy as np

    return 0.5 * (1.0 + np.tanh(0.5 * z))  # tanh form: no overflow warnings for large |z|


@dataclass(frozen=True)
class TemperatureScaling:
    """``softmax(scores / temperature)`` over the labels: rows sum to 1."""

    temperature: float = 1.0

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return softmax(scores / self.temperature)

    @classmethod
    def fit(cls, scores: np.ndarray, targets: np.ndarray, *, prior: float = 1.0, prior_width: float = 1.0,
            bounds: tuple[float, float] = (1e-3, 1e3)) -> TemperatureScaling:
        """The most probable temperature given labelled scores (``targets``: label indices).

        Maximum a posteriori with a log-normal prior around ``prior`` (the classifier's default
        temperature; ``prior_width`` is the standard deviation of log T). With many examples the data
        decide; with a handful that a classifier separates perfectly, maximum likelihood alone would
        drive the temperature to zero and every probability to 1, and the prior stops that.
        """
        import numpy as np

        require_sklearn("temperature scaling")
        from scipy.optimize import minimize_scalar

        scores = np.asarray(scores, dtype=np.float64)
        targets = np.asarray(targets, dtype=np.int64)
        if scores.ndim != 2 or len(scores) != len(targets) or len(scores) == 0:
            raise InputError("temperature scaling needs one row of scores per labelled example")
        rows = np.arange(len(targets))
        log_prior = float(np.log(prior))

        def negative_log_posterior(log_t: float) -> float:
            z = scores / np.exp(log_t)
            z = z - z.max(axis=1, keepdims=True)
            log_p = z[rows, targets] - np.log(np.exp(z).sum(axis=1))
            return float(-log_p.sum() + 0.5 * ((log_t - log_prior) / prior_width) ** 2)

        # Searching log T keeps the optimiser on a scale where 0.01 and 100 are equally far from 1.
        best = minimize_scalar(negative_log_posterior, bounds=(np.log(bounds[0]), np.log(bounds[1])),
                               method="bounded")
        return cls(float(np.exp(best.x)))


@dataclass(frozen=True)
class PlattScaling:
    """Per label ``sigmoid(slope * score + offset)``: independent probabilities for multi-label use.

    Fitted with Platt's smoothed targets, (N+ + 1)/(N+ + 2) and 1/(N- + 2), so a few perfectly
    separated examples do not give an infinite slope.
    """

    slope: tuple[float, ...] = field(default=())
    offset: tuple[float, ...] = field(default=())
    # Used for every label when slope/offset are empty (the unfitted prior).
    default_slope: float = 1.0
    default_offset: float = 0.0

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        import numpy as np

        k = scores.shape[1]
        a = np.asarray(self.slope) if self.slope else np.full(k, self.default_slope)
        b = np.asarray(self.offset) if self.offset else np.full(k, self.default_offset)
        return sigmoid(scores * a + b)

    @classmethod
    def fit(cls, scores: np.ndarray, targets: np.ndarray, *, prior: PlattScaling | None = None
            ) -> PlattScaling:
        """Fit one sigmoid per label from ``targets`` (n, k) of 0/1.

        A label whose examples are all positive or all negative gives no information on where its
        boundary is; it keeps the prior's slope and offset.
        """
        import numpy as np

        LogisticRegression = require_sklearn("Platt scaling").LogisticRegression  # noqa: N806 - a class

        scores = np.asarray(scores, dtype=np.float64)
        targets = np.asarray(targets).astype(bool)
        if scores.shape != targets.shape or len(scores) == 0:
            raise InputError("Platt scaling needs a 0/1 target per label for every labelled example")
        prior = prior or cls()
        k = scores.shape[1]
        slopes, offsets = [], []
        for j in range(k):
            y = targets[:, j]
            prior_a = prior.slope[j] if prior.slope else prior.default_slope
            prior_b = prior.offset[j] if prior.offset else prior.default_offset
            if y.all() or not y.any():
                slopes.append(float(prior_a))
                offsets.append(float(prior_b))
                continue
            # Platt's smoothed targets, (N+ + 1)/(N+ + 2) and 1/(N- + 2), as sample weights on each
            # example counted once as positive and once as negative; large C: barely regularised.
            pos, neg = y.sum(), (~y).sum()
            t = np.where(y, (pos + 1) / (pos + 2), 1 / (neg + 2))
            x = np.concatenate([scores[:, j], scores[:, j]])[:, None]
            lr = LogisticRegression(C=1e4, max_iter=1000).fit(
                x, np.concatenate([np.ones(len(y)), np.zeros(len(y))]), sample_weight=np.concatenate([t, 1 - t]))
            slopes.append(float(lr.coef_[0, 0]))
            offsets.append(float(lr.intercept_[0]))
        return cls(tuple(slopes), tuple(offsets), prior.default_slope, prior.default_offset)


def expected_calibration_error(probabilities: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins.

    ``probabilities`` holds the confidence of each prediction (the top probability), ``correct`` whether
    it was right.
    """
    import numpy as np

    p = np.asarray(probabilities, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    if len(p) == 0:
        return 0.0
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(p[mask].mean() - c[mask].mean())
    return float(total)
