"""recommend: learn people's tastes from a ratings table and suggest items or predict ratings.

``train_recommender`` fits a hybrid model (collaborative filtering + item texts; see
:mod:`plait.models.recommender`) and saves it as a catalog entry with capability ``recommend``, its files in
``$PLAIT_HOME/models/NAME/``. ``recommend`` answers top-k for a user, ``predict_rating`` one rating. A user
the model has never seen still gets an answer: popular items they are likely to like, or, given a few of
their ratings, recommendations folded in from those.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from plait.errors import CatalogError, InputError, ModelNotFound
from plait.models.recommender import Recommender, Strategy
from plait.models.spec import ModelSpec
from plait.runtime import Runtime, get_runtime
from plait.tasks.recommend_data import ItemText, RatingsTable, read_items, read_ratings
from plait.tasks.recommend_fit import RecommendConfig
from plait.tasks.registry import Task, TaskRequest

__all__ = ["RecommendConfig", "Recommendations", "RecommendedItem", "RatingPrediction", "TrainReport",
           "predict_rating", "recommend", "recommender", "train_recommender"]


@dataclass(frozen=True)
class TrainReport:
    name: str
    path: Path
    ratings: int
    users: int
    items: int
    cold_items: int  # items with a text but no rating
    duplicates: int  # repeated (user, item) ratings dropped
    components: tuple[str, ...]
    blend_weights: dict[str, float]
    content_weight: float
    metrics: dict[str, float]  # held-out RMSE and precision@10, training seconds


@dataclass(frozen=True)
class RecommendedItem:
    item: str
    title: str
    score: float  # the ranking score (for the hybrid: P(picks it up) × P(likes it), relative)
    predicted_rating: float
    because: str | None = None  # a liked item this one is close to


@dataclass(frozen=True)
class Recommendations:
    user: str | None
    model: str
    strategy: str  # the strategy actually used (an unknown user falls back to "popular")
    known_user: bool
    items: tuple[RecommendedItem, ...]


@dataclass(frozen=True)
class RatingPrediction:
    user: str | None
    item: str
    title: str
    rating: float
    p_like: float  # probability the user rates it at or above the like threshold
    known_user: bool
    cold_item: bool  # the item has a text but no ratings: estimated from similar items


def recommender(model: str | Recommender | None, runtime: Runtime | None = None) -> Recommender:
    if isinstance(model, Recommender):
        return model
    if not model:
        raise InputError("name a recommender (--model NAME); "
                         "train one with `plait recommend train RATINGS --name NAME`")
    rt = runtime or get_runtime()
    return rt.model(model, Recommender)


def train_recommender(ratings: str | Path | RatingsTable, *, name: str,
                      items: str | Path | Mapping[str, ItemText | str] | None = None,
                      config: RecommendConfig | None = None, embed_model: str | None = None, replace: bool = False,
                      runtime: Runtime | None = None, progress: Callable[[str], None] | None = None) -> TrainReport:
    """Train on a ratings table (file or :class:`RatingsTable`) and item texts; save as catalog entry ``name``."""
    from plait.tasks.embed import embedder as get_embedder
    from plait.tasks.recommend_fit import fit

    rt = runtime or get_runtime()
    _check_name(name, rt, replace)
    table = ratings if isinstance(ratings, RatingsTable) else read_ratings(ratings)
    texts = _item_texts(items)
    emb = get_embedder(embed_model, rt) if texts else None
    fitted = fit(table, texts, emb, config, progress)
    data = fitted.data
    folder = rt.settings.models_dir / name
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the old model and swap, so a failure never leaves a half-written one in place.
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder.parent))
    try:
        data.save(staging)
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    meta, metrics = data.meta, data.meta["metrics"]
    spec = ModelSpec(
        name=name, backend="recommender", capabilities=("recommend",), source=str(folder.resolve()),
        description=f"recommender trained on {Path(table.source).name}: {len(meta['users']):,} users, "
                    f"{len(meta['items']):,} items, {len(table):,} ratings",
        version=_next_version(name, rt),
        options={"components": meta["components"], "like_threshold": meta["like_threshold"],
                 "content_weight": meta["content_weight"], "embed_model": emb.spec.name if emb else None},
        metrics={k: round(float(v), 4) for k, v in metrics.items()},
        provenance={"ratings": table.source, "items": str(items) if isinstance(items, str | Path) else None,
                    "config": meta["config"]},
    )
    rt.catalog.add(spec, replace=replace)
    rt.pool.unload(name)  # a loaded older version must not keep answering
    return TrainReport(name, folder, len(table), len(meta["users"]), len(meta["items"]),
                       len(meta["items"]) - int(meta["n_warm_items"]), table.duplicates, tuple(meta["components"]),
                       dict(meta["blend_weights"]), float(meta["content_weight"]), dict(metrics))


def recommend(user: str | None = None, *, model: str | Recommender | None = None, k: int = 10,
              strategy: Strategy = "hybrid", ratings: Mapping[str, float] | None = None,
              include_rated: bool = False, runtime: Runtime | None = None) -> Recommendations:
    """The ``k`` best items for ``user``; ``ratings`` (item → rating) adds to or stands in for their history."""
    import numpy as np

    m = recommender(model, runtime)
    if k < 1:
        raise InputError(f"k must be at least 1, not {k}")
    user = None if user is None else str(user)
    state = m.user_state(user, _given(ratings))
    scored = m.score(state, strategy)
    score = scored.score.astype(np.float64, copy=True)
    if not include_rated and len(state.rated):
        score[state.rated] = -np.inf
    k = min(k, int(np.isfinite(score).sum()))
    top = np.argpartition(-score, k - 1)[:k] if 0 < k < len(score) else np.flatnonzero(np.isfinite(score))
    top = top[np.argsort(-score[top], kind="stable")]
    out = []
    for idx in top.tolist():
        because = m.explain(state, idx) if scored.strategy in ("hybrid", "collaborative") else None
        out.append(RecommendedItem(m.items[idx], m.titles[idx], round(float(score[idx]), 6),
                                   round(float(scored.rating[idx]), 3),
                                   None if because is None else m.titles[because]))
    return Recommendations(user, m.spec.name, scored.strategy, state.known, tuple(out))


def predict_rating(user: str | None, item: str, *, model: str | Recommender | None = None,
                   ratings: Mapping[str, float] | None = None, runtime: Runtime | None = None) -> RatingPrediction:
    import numpy as np

    m = recommender(model, runtime)
    item = str(item)
    if item not in m.item_index:
        raise InputError(f"the recommender {m.spec.name} does not know item '{item}' ({len(m.items):,} items); "
                         "retrain with the item in --items to predict it from its text")
    state = m.user_state(None if user is None else str(user), _given(ratings))
    idx = m.item_index[item]
    rating = float(m.predict(state, np.array([idx]))[0])
    return RatingPrediction(user, item, m.titles[idx], round(rating, 3), round(float(m.p_like(np.array(rating))), 4),
                            state.known, idx >= m.n_warm)


def _given(ratings: Mapping[str, float] | None) -> dict[str, float]:
    out = {}
    for item, value in (ratings or {}).items():
        try:
            out[str(item)] = float(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"the rating given for item {item} is {value!r}, not a number") from exc
    return out


def _check_name(name: str, rt: Runtime, replace: bool) -> None:
    try:
        ModelSpec(name=name, backend="recommender", capabilities=("recommend",), source="-")
    except ValidationError as exc:
        raise InputError(f"'{name}' cannot be a model name: use letters, digits and . _ @ : -") from exc
    try:
        existing = rt.catalog.get(name)
    except ModelNotFound:
        return
    if existing.builtin:
        raise CatalogError(f"'{name}' is a built-in model; choose another name")
    if not replace:
        raise CatalogError(f"a model named '{name}' already exists; pass --replace to retrain it or pick another name")
    if "recommend" not in existing.capabilities:
        raise CatalogError(f"'{name}' is a {', '.join(existing.capabilities)} model, not a recommender; "
                           "pick another name")


def _next_version(name: str, rt: Runtime) -> int:
    try:
        return rt.catalog.get(name).version + 1
    except ModelNotFound:
        return 1


def _item_texts(items: str | Path | Mapping[str, Any] | None) -> dict[str, ItemText] | None:
    if items is None:
        return None
    if isinstance(items, str | Path):
        return read_items(items)
    out = {}
    for key, value in items.items():
        if isinstance(value, ItemText):
            out[str(key)] = value
        elif isinstance(value, str) and value.strip():
            out[str(key)] = ItemText(value.strip().split("\n", 1)[0][:200], value.strip())
        else:
            raise InputError(f"item {key}: its text must be a non-empty string")
    return out or None


# --- the task -----------------------------------------------------------------------------------------

class RecommendRequest(TaskRequest):
    model: str = Field(min_length=1, description="a trained recommender (`plait recommend train`)")
    user: str | None = Field(None, description="a user the recommender knows; none: from ratings only")
    k: int = Field(10, ge=1, le=1000)
    strategy: Strategy = "hybrid"
    ratings: dict[str, float] | None = Field(None, description="item → rating, added to the user's history")
    include_rated: bool = False


TASK = Task(
    name="recommend", summary="The best items for a user from a trained recommender", request=RecommendRequest,
    result=Recommendations, input=None,
    run=lambda request, ctx: recommend(request.user, model=request.model, k=request.k, strategy=request.strategy,
                                       ratings=request.ratings, include_rated=request.include_rated,
                                       runtime=ctx.runtime),
    models=lambda request, settings: [request.model],
)
