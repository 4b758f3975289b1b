"""Measuring recommenders: RMSE/MAE of predicted ratings and precision/recall@k of top-k lists.

Top-k protocol (the usual one for explicit ratings): for each test user, rank every item they did not
rate in training; an item is relevant when the user rated it at or above the like threshold in the test
split. Users with no relevant test item are skipped (their precision is undefined by construction).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class TopKMetrics:
    k: int
    precision: float
    recall: float
    users: int  # users evaluated (with at least one relevant test item)


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(predicted, dtype=np.float64) - actual) ** 2)))


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    import numpy as np

    return float(np.mean(np.abs(np.asarray(predicted, dtype=np.float64) - actual)))


def relevant_sets(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, threshold: float) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for u, i, r in zip(users.tolist(), items.tolist(), ratings.tolist(), strict=True):
        if r >= threshold:
            out.setdefault(int(u), set()).add(int(i))
    return out


def top_k_metrics(scores: Callable[[int], np.ndarray], seen: Mapping[int, np.ndarray],
                  relevant: Mapping[int, set[int]], k: int = 10) -> TopKMetrics:
    """``scores(user)`` gives a score per item index; ``seen[user]`` are the items to leave out."""
    import numpy as np

    precisions, recalls = [], []
    for user, wanted in relevant.items():
        s = np.array(scores(user), dtype=np.float64, copy=True)
        exclude = seen.get(user)
        if exclude is not None and len(exclude):
            s[exclude] = -np.inf
        top = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
        hits = len(wanted.intersection(top.tolist()))
        precisions.append(hits / k)
        recalls.append(hits / len(wanted))
    if not precisions:
        return TopKMetrics(k, 0.0, 0.0, 0)
    return TopKMetrics(k, float(np.mean(precisions)), float(np.mean(recalls)), len(precisions))
