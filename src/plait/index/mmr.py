"""Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998): relevant results that differ.

Results are picked one at a time; each pick maximises ``λ·relevance − (1−λ)·(max similarity to the
results already picked)``. λ = 1 is the plain ranking; lower values trade relevance for variety, so five
near-copies of one passage (a quoted mail thread, a file saved twice) do not fill the first page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def mmr(relevance: Sequence[float], vectors: np.ndarray, k: int, lam: float = 0.7) -> list[int]:
    """Indices of the ``k`` items to show, in order. ``vectors`` are unit rows (n, d).

    Relevance is rescaled to [0, 1] first so that it is commensurate with cosine similarity whatever
    its source (fused rank scores are ~0.01–0.03).
    """
    import numpy as np

    n = len(relevance)
    if n == 0 or k <= 0:
        return []
    rel = np.asarray(relevance, dtype=np.float64)
    span = rel.max() - rel.min()
    rel = (rel - rel.min()) / span if span > 0 else np.ones(n)
    sims = vectors @ vectors.T
    chosen: list[int] = []
    closest = np.full(n, -np.inf)  # each item's highest similarity to a chosen one
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        score = lam * rel - (1 - lam) * penalty
        score[~available] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        available[pick] = False
        closest = np.maximum(closest, sims[pick])
    return chosen
