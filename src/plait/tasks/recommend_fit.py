"""Training a recommender: Surprise's rating predictors, implicit's ALS, item embeddings, and a blend.

Two stages, so that every choice is made on ratings the models did not see:

1. hold out a seeded fraction of the ratings (10%), fit every component on the rest, and on the held-out
   ratings choose the blend weights (non-negative least squares), the P(like) calibration (logistic
   regression) and the content weight of the hybrid ranking (precision@10); record those metrics;
2. refit every component on all the ratings and keep the choices from stage 1.

Array keys of the result (n_u users, n_i items: first the rated "warm" items, then text-only "cold" ones):
``r_indptr/r_indices/r_data`` (CSR ratings, n_u × n_i); ``svdpp_bu (n_u) svdpp_bi (n_i) svdpp_pu (n_u, f)
svdpp_qi svdpp_yj (n_i, f)``; ``svd_bu svd_bi svd_pu svd_qi``; ``knn_bu knn_bi knn_sim (warm × warm)``;
``als_user (n_u, F) als_item (n_i, F)``; ``embeddings (n_i, d) has_text (n_i)``; ``popularity (n_i)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plait.errors import InputError, MissingDependency
from plait.models.recommender import FORMAT, Recommender, RecommenderData
from plait.tasks.recommend_data import ItemText, RatingsTable
from plait.tasks.recommend_eval import relevant_sets, rmse, top_k_metrics

if TYPE_CHECKING:
    import numpy as np

    from plait.models.base import Embedder

Component = Literal["svdpp", "svd", "knn"]
MIN_RATINGS = 20
CONTENT_WEIGHTS = (0.0, 0.1, 0.25, 0.5)


class RecommendConfig(BaseModel):
    """Training settings. The defaults were chosen on a validation split of MovieLens-100k's training part."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    components: tuple[Component, ...] = Field(default=("svdpp", "svd", "knn"), min_length=1)
    svdpp_factors: int = Field(default=20, ge=1)
    svdpp_epochs: int = Field(default=30, ge=1)
    svdpp_lr: float = Field(default=0.007, gt=0)
    svdpp_reg: float = Field(default=0.05, ge=0)
    svd_factors: int = Field(default=100, ge=1)
    svd_epochs: int = Field(default=40, ge=1)
    svd_lr: float = Field(default=0.005, gt=0)
    svd_reg: float = Field(default=0.06, ge=0)
    knn_k: int = Field(default=40, ge=1)
    knn_shrinkage: int = Field(default=100, ge=0)
    max_knn_items: int = Field(default=6000, ge=1, description="beyond this many items the kNN similarity matrix is "
                                                        "too large (items² floats) and kNN is left out")
    als_factors: int = Field(default=32, ge=1)
    als_regularization: float = Field(default=0.1, ge=0)
    als_alpha: float = Field(default=2.0, gt=0)
    als_iterations: int = Field(default=20, ge=1)
    content_neighbours: int = Field(default=20, ge=1, description="text neighbours a cold item borrows factors from")
    holdout: float = Field(default=0.1, ge=0.0, le=0.5, description="fraction of ratings held out to tune the blend")
    like_threshold: float | None = Field(default=None, description="rating at which a user 'likes' an item "
                                                           "(default: three quarters up the scale, 4 on 1-5)")
    seed: int = 0


@dataclass
class Fitted:
    data: RecommenderData
    algos: dict[str, Any]  # Surprise's fitted objects of the final stage (tests compare against them)


def fit(table: RatingsTable, item_texts: Mapping[str, ItemText] | None = None, embedder: Embedder | None = None,
        config: RecommendConfig | None = None, progress: Callable[[str], None] | None = None) -> Fitted:
    import numpy as np

    cfg = config or RecommendConfig()
    say = progress or (lambda message: None)
    started = time.perf_counter()
    _check_libraries(cfg)
    if len(table) < MIN_RATINGS:
        raise InputError(f"{table.source} has {len(table)} ratings; a recommender needs at least {MIN_RATINGS}")
    lo, hi = float(table.ratings.min()), float(table.ratings.max())
    if lo == hi:
        raise InputError(f"every rating in {table.source} is {lo:g}; there is nothing to learn preferences from")
    threshold = cfg.like_threshold if cfg.like_threshold is not None else lo + 0.75 * (hi - lo)
    if not lo < threshold <= hi:
        raise InputError(f"the like threshold {threshold:g} must lie above {lo:g} and at most {hi:g}")

    users = sorted(set(table.users.tolist()))
    warm = sorted(set(table.items.tolist()))
    texts = dict(item_texts or {})
    cold = sorted(set(texts) - set(warm))
    items = warm + cold
    user_pos = {u: k for k, u in enumerate(users)}
    item_pos = {it: k for k, it in enumerate(items)}
    u = np.fromiter((user_pos[x] for x in table.users.tolist()), dtype=np.int64, count=len(table))
    i = np.fromiter((item_pos[x] for x in table.items.tolist()), dtype=np.int64, count=len(table))
    r = table.ratings.astype(np.float64)
    knn = "knn" in cfg.components and len(warm) <= cfg.max_knn_items
    components = tuple(c for c in cfg.components if c != "knn" or knn)
    shape = Shape(len(users), len(items), len(warm))

    embeddings, has_text = None, np.zeros(len(items), dtype=bool)
    if texts and embedder is not None:
        with_text = [k for k, it in enumerate(items) if it in texts]
        say(f"embedding {len(with_text):,} item texts with {embedder.spec.name}")
        vectors = embedder.embed_many([texts[items[k]].text for k in with_text], kind="document")
        embeddings = np.zeros((len(items), vectors.shape[1]), dtype=np.float32)
        embeddings[with_text] = vectors
        has_text[with_text] = True

    meta: dict[str, Any] = {
        "format": FORMAT, "users": users, "items": items,
        "titles": [texts[it].title if it in texts else it for it in items],
        "n_warm_items": len(warm), "rating_min": lo, "rating_max": hi, "like_threshold": threshold,
        "knn_k": cfg.knn_k, "config": cfg.model_dump(mode="json"), "components": list(components),
    }
    choices: dict[str, Any] = {"blend_weights": {c: 1.0 / len(components) for c in components},
                               "like_calibration": _default_calibration(lo, hi, threshold), "content_weight": 0.0}
    metrics: dict[str, float] = {}

    rng = np.random.default_rng(cfg.seed)
    held = rng.random(len(r)) < cfg.holdout if cfg.holdout > 0 and len(r) >= 5 * MIN_RATINGS else None
    if held is not None and held.any() and (~held).any():
        say(f"stage 1/2: fitting on {int((~held).sum()):,} ratings, tuning on {int(held.sum()):,} held out")
        stage = _fit_stage(u[~held], i[~held], r[~held], shape, components, cfg, lo, hi, embeddings, has_text,
                           {**meta, **choices}, say)
        choices, metrics = _tune(stage.model, u[held], i[held], r[held], threshold, components, has_text, cfg)
    say(f"stage 2/2: fitting on all {len(r):,} ratings" if held is not None else f"fitting on {len(r):,} ratings")
    final = _fit_stage(u, i, r, shape, components, cfg, lo, hi, embeddings, has_text, {**meta, **choices}, say)
    final.data.meta["metrics"] = {**metrics, "train_seconds": round(time.perf_counter() - started, 2),
                                  "ratings": float(len(r)), "users": float(len(users)), "items": float(len(items))}
    return Fitted(final.data, final.algos)


@dataclass(frozen=True)
class Shape:
    users: int
    items: int
    warm: int


@dataclass
class _Stage:
    data: RecommenderData
    model: Recommender
    algos: dict[str, Any]


def _check_libraries(cfg: RecommendConfig) -> None:
    for module, package in (("surprise", "scikit-surprise"), ("implicit", "implicit"), ("sklearn", "scikit-learn"),
                            ("scipy", "scipy")):
        try:
            __import__(module)
        except ImportError as exc:
            raise MissingDependency("recommend training", extra="recommend", package=package) from exc


def _fit_stage(u: np.ndarray, i: np.ndarray, r: np.ndarray, shape: Shape, components: tuple[str, ...],
               cfg: RecommendConfig, lo: float, hi: float, embeddings: np.ndarray | None, has_text: np.ndarray,
               meta: dict[str, Any], say: Callable[[str], None]) -> _Stage:
    import numpy as np
    import scipy.sparse as sps

    arrays, algos, mu = _fit_surprise(u, i, r, shape, components, cfg, lo, hi, say)
    say(f"  ALS ({cfg.als_factors} factors) on which items each user rated")
    arrays["als_user"], arrays["als_item"] = _fit_als(u, i, shape, cfg)
    ratings = sps.csr_matrix((r.astype(np.float32), (u, i)), shape=(shape.users, shape.items))
    ratings.sort_indices()
    arrays.update(r_indptr=ratings.indptr.astype(np.int64), r_indices=ratings.indices.astype(np.int64),
                  r_data=ratings.data.astype(np.float32),
                  popularity=np.bincount(i, minlength=shape.items).astype(np.float32), has_text=has_text)
    if embeddings is not None:
        arrays["embeddings"] = embeddings
        _impute_cold(arrays, embeddings, has_text, cfg.content_neighbours)
    data = RecommenderData({**meta, "global_mean": mu}, arrays)
    return _Stage(data, Recommender(data), algos)


def _fit_surprise(u: np.ndarray, i: np.ndarray, r: np.ndarray, shape: Shape, components: tuple[str, ...],
                  cfg: RecommendConfig, lo: float, hi: float, say: Callable[[str], None]
                  ) -> tuple[dict[str, np.ndarray], dict[str, Any], float]:
    import numpy as np
    from surprise import SVD, Dataset, KNNBaseline, Reader, SVDpp

    # Surprise keys users and items by "raw" ids; ours are the row/column indices, mapped back below.
    trainset = Dataset(Reader(rating_scale=(lo, hi))).construct_trainset(
        list(zip(u.tolist(), i.tolist(), r.tolist(), [None] * len(r), strict=True)))
    users = np.array([trainset.to_raw_uid(x) for x in trainset.all_users()], dtype=np.int64)
    items = np.array([trainset.to_raw_iid(x) for x in trainset.all_items()], dtype=np.int64)
    arrays: dict[str, np.ndarray] = {}
    algos: dict[str, Any] = {}

    def place(values: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:
        out = np.zeros((size, *values.shape[1:]), dtype=np.float32)
        out[index] = values
        return out

    if "svdpp" in components:
        say(f"  SVD++ ({cfg.svdpp_factors} factors, {cfg.svdpp_epochs} epochs)")
        algo = SVDpp(n_factors=cfg.svdpp_factors, n_epochs=cfg.svdpp_epochs, lr_all=cfg.svdpp_lr,
                     reg_all=cfg.svdpp_reg, random_state=cfg.seed, cache_ratings=True).fit(trainset)
        arrays.update(svdpp_bu=place(algo.bu, users, shape.users), svdpp_bi=place(algo.bi, items, shape.items),
                      svdpp_pu=place(algo.pu, users, shape.users), svdpp_qi=place(algo.qi, items, shape.items),
                      svdpp_yj=place(algo.yj, items, shape.items))
        algos["svdpp"] = algo
    if "svd" in components:
        say(f"  biased SVD ({cfg.svd_factors} factors, {cfg.svd_epochs} epochs)")
        algo = SVD(n_factors=cfg.svd_factors, n_epochs=cfg.svd_epochs, lr_all=cfg.svd_lr, reg_all=cfg.svd_reg,
                   random_state=cfg.seed).fit(trainset)
        arrays.update(svd_bu=place(algo.bu, users, shape.users), svd_bi=place(algo.bi, items, shape.items),
                      svd_pu=place(algo.pu, users, shape.users), svd_qi=place(algo.qi, items, shape.items))
        algos["svd"] = algo
    if "knn" in components:
        say(f"  item kNN (k={cfg.knn_k}, pearson-baseline similarities)")
        algo = KNNBaseline(k=cfg.knn_k, sim_options={"name": "pearson_baseline", "user_based": False,
                                                     "shrinkage": cfg.knn_shrinkage}, verbose=False).fit(trainset)
        sim = np.zeros((shape.warm, shape.warm), dtype=np.float32)
        sim[np.ix_(items, items)] = algo.sim
        arrays.update(knn_bu=place(algo.bu, users, shape.users), knn_bi=place(algo.bi, items, shape.items),
                      knn_sim=sim)
        algos["knn"] = algo
    return arrays, algos, float(trainset.global_mean)


def _fit_als(u: np.ndarray, i: np.ndarray, shape: Shape, cfg: RecommendConfig) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np
    import scipy.sparse as sps
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    interactions = sps.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i)), shape=(shape.users, shape.items))
    interactions.data[:] = 1.0  # a repeated pair counts once
    # implicit runs its own threads; a multi-threaded BLAS underneath would only oversubscribe the cores.
    with threadpool_limits(1, "blas"):
        # Starting implicit's thread pool costs ~0.2 s, more than a small table takes on one thread.
        als = AlternatingLeastSquares(factors=cfg.als_factors, regularization=cfg.als_regularization,
                                      alpha=cfg.als_alpha, iterations=cfg.als_iterations, random_state=cfg.seed,
                                      num_threads=1 if interactions.nnz < 50_000 else 0)
        als.fit(interactions, show_progress=False)
    return np.asarray(als.user_factors, dtype=np.float32), np.asarray(als.item_factors, dtype=np.float32)


def _impute_cold(arrays: dict[str, np.ndarray], embeddings: np.ndarray, has_text: np.ndarray, n: int) -> None:
    """Give items without ratings the similarity-weighted mean parameters of their nearest texts."""
    import numpy as np

    count = arrays["popularity"]
    cold = np.flatnonzero((count == 0) & has_text)
    donors = np.flatnonzero((count > 0) & has_text)
    if len(cold) == 0 or len(donors) == 0:
        return
    keys = [k for k in ("svdpp_bi", "svdpp_qi", "svd_bi", "svd_qi", "knn_bi", "als_item") if k in arrays]
    for start in range(0, len(cold), 1024):
        batch = cold[start:start + 1024]
        sims = embeddings[batch] @ embeddings[donors].T  # (b, donors)
        take = min(n, len(donors))
        top = np.argpartition(-sims, take - 1, axis=1)[:, :take]
        weight = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0)
        total = weight.sum(axis=1, keepdims=True)
        weight = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
        for key in keys:
            values = arrays[key][donors][top]  # (b, take) or (b, take, f)
            w = weight if values.ndim == 2 else weight[..., None]
            arrays[key][batch] = (w * values).sum(axis=1)


def _default_calibration(lo: float, hi: float, threshold: float) -> list[float]:
    # Without held-out ratings: P(like) = 0.5 half a step below the threshold, rising over a quarter scale.
    a = 8.0 / (hi - lo)
    return [a, -a * (threshold - 0.125 * (hi - lo))]


def _tune(model: Recommender, u: np.ndarray, i: np.ndarray, r: np.ndarray, threshold: float,
          components: tuple[str, ...], has_text: np.ndarray, cfg: RecommendConfig
          ) -> tuple[dict[str, Any], dict[str, float]]:
    """Blend weights, P(like) calibration and content weight, chosen on held-out ratings."""
    import numpy as np
    from scipy.optimize import nnls

    parts = {c: np.zeros(len(r)) for c in components}
    states = {}
    order = np.argsort(u, kind="stable")
    starts = np.flatnonzero(np.r_[True, u[order][1:] != u[order][:-1]])
    for rows in np.split(order, starts[1:]):
        user = int(u[rows[0]])
        state = model.user_state(model.users[user])
        states[user] = state
        for c, values in model.component_ratings(state, i[rows]).items():
            parts[c][rows] = values
    matrix = np.column_stack([parts[c] for c in components])
    weights, _ = nnls(matrix, r)
    if not np.any(weights):
        weights = np.full(len(components), 1.0 / len(components))
    blended = np.clip(matrix @ weights, model.lo, model.hi)
    liked = r >= threshold
    calibration = _default_calibration(model.lo, model.hi, threshold)
    if 0 < liked.sum() < len(liked):
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression().fit(blended[:, None], liked)
        calibration = [float(lr.coef_[0, 0]), float(lr.intercept_[0])]
    model.weights = {c: float(w) for c, w in zip(components, weights, strict=True)}
    model.like_a, model.like_b = calibration
    metrics = {f"holdout_rmse_{c}": rmse(parts[c], r) for c in components}
    metrics["holdout_rmse"] = rmse(blended, r)

    relevant = relevant_sets(u, i, r, threshold)
    seen = {user: states[user].rated for user in relevant}
    cached: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
    for user in relevant:
        state = states[user]
        like = model.p_like(model.predict(state, np.arange(len(model.items))))
        watch = np.maximum(model.a["als_item"] @ state.als_x, 0.0)
        content = model.content_scores(state)
        cached[user] = (like, watch / max(float(watch.max()), 1e-12),
                        None if content is None else np.maximum(content, 0.0) / max(float(content.max()), 1e-12))
    best_weight, best = 0.0, -1.0
    for weight in CONTENT_WEIGHTS if has_text.any() else (0.0,):
        def score(user: int, w: float = weight) -> np.ndarray:
            like, watch, content = cached[user]
            return like * (watch if content is None else (1 - w) * watch + w * content)

        precision = top_k_metrics(score, seen, relevant, 10).precision
        metrics[f"holdout_precision_at_10_content_{weight:g}"] = precision
        if precision > best + 1e-9:
            best_weight, best = weight, precision
    metrics["holdout_precision_at_10"] = best
    return ({"blend_weights": model.weights, "like_calibration": calibration, "content_weight": best_weight},
            metrics)
