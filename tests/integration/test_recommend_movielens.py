"""recommend on real MovieLens-100k ratings (a 200-user slice, to stay quick) with real item-text embeddings.

The full benchmark (all users, the 80/20 split, RMSE <= 0.92) is bench/tasks_media.py; here the same code
must beat the global-mean + biases baseline on held-out ratings and popularity on top-10 lists.
"""

from __future__ import annotations

import numpy as np
import pytest

from plait.runtime import Runtime

pytestmark = pytest.mark.model


def test_beats_baselines_on_movielens_slice(runtime: Runtime) -> None:
    pytest.importorskip("surprise")
    from surprise import BaselineOnly, Dataset, Reader

    from plait.models.recommender import Recommender
    from plait.tasks.recommend import recommend, train_recommender
    from plait.tasks.recommend_data import ItemText, RatingsTable
    from plait.tasks.recommend_eval import relevant_sets, rmse, top_k_metrics
    from plait.tasks.recommend_fit import RecommendConfig
    from tests.corpora import movielens_100k

    ml = movielens_100k()
    ratings = ml.ratings[ml.ratings["user"] <= 200]
    rng = np.random.default_rng(3)
    test_rows = rng.random(len(ratings)) < 0.2
    train, test = ratings[~test_rows], ratings[test_rows]
    texts = {str(i): ItemText(t, f"{t}. {' '.join(ml.genres.get(i, ()))}") for i, t in ml.titles.items()}
    table = RatingsTable.from_rows(train["user"], train["item"], train["rating"], source="ml-100k slice")
    report = train_recommender(table, name="movies", items=texts, runtime=runtime,
                               config=RecommendConfig(svdpp_epochs=10, svd_epochs=20))
    assert report.cold_items > 0  # films nobody in the slice rated still get scores from their titles
    model = runtime.model("movies", Recommender)

    users, items = test["user"].astype(str), test["item"].astype(str)
    predicted = np.array([model.predict(model.user_state(u), np.array([model.item_index[i]]))[0]
                          for u, i in zip(users, items, strict=True)])
    trainset = Dataset(Reader(rating_scale=(1, 5))).construct_trainset(
        list(zip(train["user"].tolist(), train["item"].tolist(), train["rating"].tolist(), [None] * len(train),
                 strict=True)))
    baseline = BaselineOnly(verbose=False).fit(trainset)
    base = np.array([baseline.predict(int(u), int(i)).est for u, i in zip(test["user"], test["item"], strict=True)])
    assert rmse(predicted, test["rating"]) < rmse(base, test["rating"]) - 0.005

    u_idx = np.array([model.user_index[u] for u in users])
    i_idx = np.array([model.item_index[i] for i in items])
    relevant = relevant_sets(u_idx, i_idx, test["rating"], 4.0)
    seen = {u: model.user_state(model.users[u]).rated for u in relevant}

    def precision(strategy: str) -> float:
        return top_k_metrics(lambda u: model.score(model.user_state(model.users[u]), strategy).score,  # type: ignore[arg-type]
                             seen, relevant, 10).precision

    assert precision("hybrid") > 1.2 * precision("popular")

    # A newcomer who loved the Star Wars films gets more of that kind, not just the most popular list.
    fan = recommend("newcomer", model="movies", k=10, ratings={"50": 5, "172": 5, "181": 5})
    popular = recommend("stranger", model="movies", k=10)
    assert fan.strategy != "popular" and popular.strategy == "popular"
    assert [x.item for x in fan.items] != [x.item for x in popular.items]
