"""A trained recommender: rating prediction and top-k from collaborative filtering, content and popularity.

What it holds (all NumPy arrays; training lives in :mod:`plait.tasks.recommend_fit`):

- three rating predictors fitted with Surprise, blended with non-negative weights chosen on held-out
  ratings: SVD++ (biased factorisation plus implicit feedback: *which* items a user rated), biased SVD,
  and item-based kNN on baseline residuals (pearson-baseline similarities);
- an implicit-feedback ALS model (the ``implicit`` library) of *which* items a user will pick up at all;
- unit-length text embeddings of the items (content), when item texts were given;
- a logistic calibration of the blended rating into P(the user likes it), i.e. rates it at or above the
  like threshold (4 on a 1-5 scale).

Top-k ranks by P(picks it up) × P(likes it): ranking by predicted rating alone favours obscure items with
a few enthusiastic ratings, which a person has mostly never heard of.

Cold start: a user the model has not seen gets popularity × P(like), or, when a few of their ratings are
given, factors folded in from those ratings (no retraining). An item that has a text but no ratings gets
its factors and biases from the items whose texts are nearest to it (the hybrid part).

Scoring is vectorised NumPy over these arrays; it reproduces Surprise's own ``predict`` (checked in the
tests) without keeping Surprise's Python objects, so a saved model is plain ``.npz`` + ``.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from plait.errors import InputError, ModelFileError
from plait.models.base import Model
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np

Strategy = Literal["hybrid", "collaborative", "content", "popular", "rating"]
STRATEGIES: tuple[Strategy, ...] = ("hybrid", "collaborative", "content", "popular", "rating")
ARRAYS_FILE, META_FILE = "recommender.npz", "recommender.json"
FORMAT = 1


@dataclass
class UserState:
    """Everything scoring needs about one user, known or folded in from given ratings."""

    rated: np.ndarray  # item indices the user rated
    values: np.ndarray  # their ratings
    known: bool
    svdpp_bu: float = 0.0
    svdpp_z: np.ndarray | None = None  # p_u + |N(u)|^-1/2 Σ y_j
    svd_bu: float = 0.0
    svd_p: np.ndarray | None = None
    knn_bu: float = 0.0
    als_x: np.ndarray | None = None


@dataclass
class Scored:
    rating: np.ndarray  # predicted rating per item
    score: np.ndarray  # ranking score per item (higher first)
    strategy: Strategy


@dataclass
class RecommenderData:
    """The saved state. ``arrays`` keys are documented in :func:`plait.tasks.recommend_fit.fit`."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        import numpy as np

        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / ARRAYS_FILE, **self.arrays)  # type: ignore[arg-type]
        (folder / META_FILE).write_text(json.dumps(self.meta), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> RecommenderData:
        import numpy as np

        meta_path, arrays_path = folder / META_FILE, folder / ARRAYS_FILE
        for path in (meta_path, arrays_path):
            if not path.exists():
                raise ModelFileError(path, "is missing", "train the recommender again with `plait recommend train`")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            with np.load(arrays_path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (ValueError, OSError, KeyError) as exc:
            raise ModelFileError(folder, f"holds a damaged recommender ({exc})",
                                 "train it again with `plait recommend train`") from exc
        if meta.get("format") != FORMAT:
            raise ModelFileError(folder, f"holds a recommender of format {meta.get('format')}, not {FORMAT}",
                                 "train it again with `plait recommend train`")
        return cls(meta, arrays)


class Recommender(Model):
    ability = "recommend"  # for "model X cannot …" errors

    def __init__(self, data: RecommenderData, spec: ModelSpec | None = None) -> None:
        import numpy as np
        import scipy.sparse as sps

        self.data = data
        self.spec = spec or ModelSpec(name="recommender", backend="recommender", capabilities=("recommend",),
                                      source="memory")
        m, a = data.meta, data.arrays
        self.users: list[str] = m["users"]
        self.items: list[str] = m["items"]
        self.titles: list[str] = m.get("titles") or self.items
        self.user_index = {u: i for i, u in enumerate(self.users)}
        self.item_index = {it: i for i, it in enumerate(self.items)}
        self.n_warm = int(m["n_warm_items"])
        self.mu, self.lo, self.hi = float(m["global_mean"]), float(m["rating_min"]), float(m["rating_max"])
        self.like_threshold = float(m["like_threshold"])
        self.weights = {k: float(v) for k, v in m["blend_weights"].items()}
        self.like_a, self.like_b = (float(x) for x in m["like_calibration"])
        self.content_weight = float(m.get("content_weight", 0.0))
        self.knn_k = int(m.get("knn_k", 40))
        self.a = a
        n_users, n_items = len(self.users), len(self.items)
        self.R = sps.csr_matrix((a["r_data"], a["r_indices"], a["r_indptr"]), shape=(n_users, n_items))
        if "svdpp_yj" in a:
            # z_u = p_u + |N(u)|^-1/2 Σ_{j∈N(u)} y_j for every known user at once.
            counts = np.diff(self.R.indptr).astype(np.float32)
            norm = sps.diags(1.0 / np.sqrt(np.maximum(counts, 1.0)))
            binary = self.R.copy()
            binary.data = np.ones_like(binary.data)
            self.svdpp_z = a["svdpp_pu"] + np.asarray(norm @ binary @ a["svdpp_yj"], dtype=np.float32)
        self.has_text = a["has_text"].astype(bool) if "has_text" in a else np.zeros(n_items, dtype=bool)
        pop = a["popularity"].astype(np.float32)
        self.popularity = pop / max(float(pop.max()), 1.0)

    # ----- users -----------------------------------------------------------------------------------

    def user_state(self, user: str | None, ratings: dict[str, float] | None = None) -> UserState:
        """A known user's stored state, or a new one folded in from ``ratings`` (item → rating)."""
        import numpy as np

        if user is not None and user in self.user_index and not ratings:
            u = self.user_index[user]
            rated = self.R.indices[self.R.indptr[u]:self.R.indptr[u + 1]]
            values = self.R.data[self.R.indptr[u]:self.R.indptr[u + 1]]
            return UserState(
                rated, values, True,
                svdpp_bu=float(self.a["svdpp_bu"][u]) if "svdpp_bu" in self.a else 0.0,
                svdpp_z=self.svdpp_z[u] if "svdpp_yj" in self.a else None,
                svd_bu=float(self.a["svd_bu"][u]) if "svd_bu" in self.a else 0.0,
                svd_p=self.a["svd_pu"][u] if "svd_pu" in self.a else None,
                knn_bu=float(self.a["knn_bu"][u]) if "knn_bu" in self.a else 0.0,
                als_x=self.a["als_user"][u],
            )
        given = dict(ratings or {})
        if user is not None and user in self.user_index:  # a known user plus new ratings
            known = self.user_state(user)
            for idx, value in zip(known.rated, known.values, strict=True):
                given.setdefault(self.items[idx], float(value))
        idx_list, vals = [], []
        unknown = [item for item in given if item not in self.item_index]
        if unknown:
            raise InputError(f"unknown item(s) {', '.join(map(str, unknown[:5]))} in the given ratings; "
                             f"the model knows {len(self.items):,} items")
        for item, value in given.items():
            if not self.lo <= float(value) <= self.hi:
                raise InputError(f"rating {value} for item {item} is outside the scale {self.lo:g}-{self.hi:g}")
            idx_list.append(self.item_index[item])
            vals.append(float(value))
        rated = np.array(idx_list, dtype=np.int64)
        values = np.array(vals, dtype=np.float32)
        return self._fold_in(rated, values)

    def _fold_in(self, rated: np.ndarray, values: np.ndarray) -> UserState:
        """Fit a new user's biases and factors to their ratings with the item side held fixed.

        Ridge regression on the residuals, with the per-rating regularisation of the SGD the model was
        trained with (so λ grows with the number of ratings); ALS factors by implicit's own solver.
        """
        import numpy as np

        state = UserState(rated, values, False)
        n = len(rated)
        if n == 0:
            return state
        a, cfg = self.a, self.data.meta["config"]

        def ridge(q: np.ndarray, target: np.ndarray, reg: float) -> tuple[float, np.ndarray]:
            x = np.hstack([np.ones((n, 1), dtype=np.float64), q.astype(np.float64)])
            lam = reg * n * np.eye(x.shape[1])
            theta = np.linalg.solve(x.T @ x + lam, x.T @ target)
            return float(theta[0]), theta[1:].astype(np.float32)

        if "svd_qi" in a:
            state.svd_bu, state.svd_p = ridge(a["svd_qi"][rated], values - self.mu - a["svd_bi"][rated],
                                              cfg["svd_reg"])
        if "svdpp_qi" in a:
            implicit = a["svdpp_yj"][rated].sum(axis=0) / np.sqrt(n)
            target = values - self.mu - a["svdpp_bi"][rated] - a["svdpp_qi"][rated] @ implicit
            state.svdpp_bu, p = ridge(a["svdpp_qi"][rated], target, cfg["svdpp_reg"])
            state.svdpp_z = p + implicit
        if "knn_bi" in a:
            # Surprise's ALS baselines: b_u = Σ (r - μ - b_i) / (reg_u + n), reg_u = 15.
            state.knn_bu = float((values - self.mu - a["knn_bi"][rated]).sum() / (15.0 + n))
        state.als_x = self._als_fold_in(rated)
        return state

    def _als_fold_in(self, rated: np.ndarray) -> np.ndarray:
        import numpy as np
        import scipy.sparse as sps
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        cfg = self.data.meta["config"]
        item_factors = self.a["als_item"]
        row = sps.csr_matrix((np.ones(len(rated), dtype=np.float32), (np.zeros(len(rated), dtype=np.int64), rated)),
                             shape=(1, item_factors.shape[0]))
        with threadpool_limits(1, "blas"):  # implicit warns (rightly) about a threaded BLAS under its own threads
            als = AlternatingLeastSquares(factors=item_factors.shape[1], regularization=cfg["als_regularization"],
                                          alpha=cfg["als_alpha"], num_threads=1)
            als.item_factors = item_factors
            als.user_factors = np.zeros((1, item_factors.shape[1]), dtype=np.float32)
            return np.asarray(als.recalculate_user(0, row), dtype=np.float32)

    # ----- scoring ---------------------------------------------------------------------------------

    def component_ratings(self, state: UserState, items: np.ndarray) -> dict[str, np.ndarray]:
        """Each rating predictor's estimate for ``items`` (clipped to the scale, as Surprise does)."""
        import numpy as np

        a, out = self.a, {}
        if "svdpp_bi" in a:
            est = self.mu + state.svdpp_bu + a["svdpp_bi"][items]
            if state.svdpp_z is not None:
                est = est + a["svdpp_qi"][items] @ state.svdpp_z
            out["svdpp"] = est
        if "svd_bi" in a:
            est = self.mu + state.svd_bu + a["svd_bi"][items]
            if state.svd_p is not None:
                est = est + a["svd_qi"][items] @ state.svd_p
            out["svd"] = est
        if "knn_bi" in a:
            out["knn"] = self._knn(state, items)
        return {k: np.clip(v.astype(np.float64), self.lo, self.hi) for k, v in out.items()}

    def _knn(self, state: UserState, items: np.ndarray) -> np.ndarray:
        """Item-based kNN on baseline residuals (Surprise's KNNBaseline, user_based=False), vectorised."""
        import numpy as np

        a = self.a
        est = self.mu + state.knn_bu + a["knn_bi"][items]
        warm_rated = state.rated < self.n_warm
        rated, values = state.rated[warm_rated], state.values[warm_rated]
        targets = np.flatnonzero(items < self.n_warm)
        if len(rated) == 0 or len(targets) == 0:
            return est
        residual = values - (self.mu + state.knn_bu + a["knn_bi"][rated])  # (m,)
        sim = a["knn_sim"][np.ix_(items[targets], rated)]  # (t, m)
        k = self.knn_k
        if sim.shape[1] > k:
            top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
            sim = np.take_along_axis(sim, top, axis=1)
            res = residual[top]
        else:
            res = np.broadcast_to(residual, sim.shape)
        weight = np.where(sim > 0, sim, 0.0)
        total = weight.sum(axis=1)
        adjust = np.divide((weight * res).sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
        est = est.astype(np.float64)
        est[targets] += adjust
        return est

    def predict(self, state: UserState, items: np.ndarray) -> np.ndarray:
        import numpy as np

        parts = self.component_ratings(state, items)
        blended = sum(self.weights[k] * v for k, v in parts.items())
        return np.clip(np.asarray(blended, dtype=np.float64), self.lo, self.hi)

    def p_like(self, rating: np.ndarray) -> np.ndarray:
        import numpy as np

        return 1.0 / (1.0 + np.exp(-(self.like_a * rating + self.like_b)))

    def content_scores(self, state: UserState) -> np.ndarray | None:
        """Cosine of each item's text embedding to the user's taste: rated texts weighted by rating - mean."""
        import numpy as np

        if "embeddings" not in self.a or len(state.rated) == 0:
            return None
        emb = self.a["embeddings"].astype(np.float32)
        with_text = self.has_text[state.rated]
        if not with_text.any():
            return None
        rated, values = state.rated[with_text], state.values[with_text]
        weights = values - values.mean()
        if not np.any(weights):
            weights = np.ones_like(values)
        profile = weights @ emb[rated]
        norm = float(np.linalg.norm(profile))
        if norm == 0:
            return None
        return emb @ (profile / norm)

    def score(self, state: UserState, strategy: Strategy = "hybrid") -> Scored:
        """Predicted rating and ranking score for every item, for one user."""
        import numpy as np

        if strategy not in STRATEGIES:
            raise InputError(f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
        items = np.arange(len(self.items))
        rating = self.predict(state, items)
        like = self.p_like(rating)
        content = self.content_scores(state)
        has_history = len(state.rated) > 0
        if strategy == "rating":
            return Scored(rating, rating, strategy)
        if strategy == "content":
            if content is None:
                raise InputError("content-based recommendations need item texts (train with --items) and at "
                                 "least one rating of an item that has a text")
            return Scored(rating, content, strategy)
        if strategy == "popular" or not has_history:
            return Scored(rating, self.popularity * like, "popular")
        assert state.als_x is not None
        watch = _unit_max(np.maximum(self.a["als_item"] @ state.als_x, 0.0))
        if strategy == "hybrid" and content is not None and self.content_weight > 0:
            watch = (1 - self.content_weight) * watch + self.content_weight * _unit_max(np.maximum(content, 0.0))
        else:
            strategy = "collaborative"
        return Scored(rating, watch * like, strategy)

    def explain(self, state: UserState, item: int) -> int | None:
        """The liked item of this user most similar to ``item`` (ALS item factors), to say "because you liked…"."""
        import numpy as np

        liked = state.rated[state.values >= self.like_threshold]
        if len(liked) == 0:
            return None
        factors = self.a["als_item"]
        target = factors[item]
        sims = factors[liked] @ target / (np.linalg.norm(factors[liked], axis=1) * np.linalg.norm(target) + 1e-9)
        return int(liked[int(np.argmax(sims))])


def _unit_max(x: np.ndarray) -> np.ndarray:
    top = float(x.max()) if x.size else 0.0
    return x / top if top > 0 else x


def load(spec: ModelSpec, settings: Settings) -> Recommender:
    try:
        import implicit  # noqa: F401 - needed to fold in new users; fail at load, not mid-request
        import scipy  # noqa: F401
    except ImportError as exc:
        from plait.errors import MissingDependency

        raise MissingDependency("recommend", extra="recommend", package="implicit") from exc
    folder = spec.local_path(settings.models_dir)
    return Recommender(RecommenderData.load(Path(folder)), spec)
