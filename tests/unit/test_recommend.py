"""recommend on small synthetic ratings (fast): reading tables, training, scoring, cold start, bad input.

The ratings come from a known low-rank model plus noise, so "the model learned something" is testable:
it must beat the global mean on ratings it did not see.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("surprise")
pytest.importorskip("implicit")

from plait.errors import CatalogError, InputError  # noqa: E402
from plait.models.recommender import Recommender  # noqa: E402
from plait.runtime import Runtime  # noqa: E402
from plait.tasks.recommend import predict_rating, recommend, train_recommender  # noqa: E402
from plait.tasks.recommend_data import ItemText, RatingsTable, read_items, read_ratings  # noqa: E402
from plait.tasks.recommend_eval import relevant_sets, rmse, top_k_metrics  # noqa: E402
from plait.tasks.recommend_fit import RecommendConfig, fit  # noqa: E402
from tests.unit.test_cli import plait  # noqa: E402

FAST = RecommendConfig(svdpp_factors=4, svdpp_epochs=8, svd_factors=8, svd_epochs=10, als_factors=8,
                       als_iterations=5, content_neighbours=5)
GENRES = ("space laser robot", "love wedding kiss", "ghost blood scream")


def synthetic(n_users: int = 60, n_items: int = 40, density: float = 0.5, seed: int = 0
              ) -> tuple[list[tuple[str, str, float]], dict[str, ItemText]]:
    """Users like one of three genres; ratings follow taste + item quality + noise, on a 1-5 scale."""
    rng = np.random.default_rng(seed)
    item_genre = np.arange(n_items) % 3
    quality = rng.normal(0, 0.5, n_items)
    taste = rng.integers(0, 3, n_users)
    rows = []
    for u in range(n_users):
        for i in range(n_items):
            if rng.random() < density:
                true = 2.6 + 1.6 * (taste[u] == item_genre[i]) + quality[i] + rng.normal(0, 0.4)
                rows.append((f"u{u}", f"i{i}", float(np.clip(np.round(true), 1, 5))))
    texts = {f"i{i}": ItemText(f"Film {i}", f"Film {i}. {GENRES[item_genre[i]]}") for i in range(n_items)}
    return rows, texts


def table_of(rows: list[tuple[str, str, float]]) -> RatingsTable:
    users, items, ratings = zip(*rows, strict=True)
    return RatingsTable.from_rows(users, items, ratings, source="synthetic")


# ----- reading tables --------------------------------------------------------------------------------

def test_reads_csv_with_header_in_any_column_order(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("movieId,rating,userId,timestamp\n10,4.5,1,99\n11,3,1,100\n10,2,2,101\n", encoding="utf-8")
    t = read_ratings(path)
    assert t.users.tolist() == ["1", "1", "2"] and t.items.tolist() == ["10", "11", "10"]
    assert t.ratings.tolist() == [4.5, 3.0, 2.0]


@pytest.mark.parametrize(("content", "name"), [
    ("1\t10\t4\n2\t10\t5\n", "r.tsv"),  # no header, tabs
    ("1::10::4::978300760\n2::10::5::978300761\n", "ratings.dat"),  # MovieLens 1M
    ("user_id:token\titem_id:token\trating:float\n1\t10\t4\n2\t10\t5\n", "ml.inter"),  # RecBole
    ("user;item;rating\n1;10;4\n2;10;5\n", "r.csv"),
])
def test_reads_common_layouts(tmp_path: Path, content: str, name: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    t = read_ratings(path)
    assert t.users.tolist() == ["1", "2"] and t.items.tolist() == ["10", "10"] and t.ratings.tolist() == [4, 5]


def test_repeated_ratings_keep_the_last(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("1,10,2\n1,11,3\n1,10,5\n", encoding="utf-8")
    t = read_ratings(path)
    assert dict(zip(t.items.tolist(), t.ratings.tolist(), strict=True)) == {"10": 5.0, "11": 3.0}
    assert t.duplicates == 1


@pytest.mark.parametrize(("content", "message"), [
    ("", "empty"),
    ("user,item,rating\n", "only a header"),
    ("1,10,4\n2,10,lots\n", "line 2: rating 'lots' is not a number"),
    ("1,10\n2,11\n", "expected at least 3 columns"),
    ("1,,4\n", "empty user or item"),
    ("1,10,nan\n", "not a number"),
])
def test_bad_ratings_files_say_where(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_ratings(path)


def test_binary_ratings_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(InputError, match="binary"):
        read_ratings(path)


def test_reads_items_with_and_without_header(tmp_path: Path) -> None:
    path = tmp_path / "items.tsv"
    path.write_text("item_id:token\tmovie_title:token_seq\tclass:token_seq\n1\tToy Story\tAnimation Comedy\n"
                    "2\tHeat\t\n", encoding="utf-8")
    items = read_items(path)
    assert items["1"] == ItemText("Toy Story", "Toy Story. Animation Comedy") and items["2"].title == "Heat"
    path.write_text("7,Alien,sci-fi horror\n", encoding="utf-8")
    assert read_items(path)["7"].text == "Alien. sci-fi horror"


# ----- training and scoring --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitted_and_test() -> tuple[object, list[tuple[str, str, float]]]:
    from tests.fakes import FAKE_SPECS, FakeEmbed

    rows, texts = synthetic()
    rng = np.random.default_rng(1)
    test_mask = rng.random(len(rows)) < 0.2
    train = [r for r, t in zip(rows, test_mask, strict=True) if not t]
    test = [r for r, t in zip(rows, test_mask, strict=True) if t]
    texts["new"] = ItemText("Brand new", "Brand new. space laser robot")  # text, no ratings
    return fit(table_of(train), texts, FakeEmbed(FAKE_SPECS[1]), FAST), test


def test_vectorised_scoring_matches_surprise(fitted_and_test: tuple) -> None:
    fitted, test = fitted_and_test
    model = Recommender(fitted.data)
    for user, item, _ in test[:60]:
        if item not in model.item_index:
            continue
        state = model.user_state(user)
        mine = model.component_ratings(state, np.array([model.item_index[item]]))
        for name, algo in fitted.algos.items():
            theirs = algo.predict(model.user_index[user], model.item_index[item]).est
            assert mine[name][0] == pytest.approx(theirs, abs=1e-4), name


def test_beats_the_global_mean_on_unseen_ratings(fitted_and_test: tuple) -> None:
    fitted, test = fitted_and_test
    model = Recommender(fitted.data)
    actual = np.array([r for _, _, r in test])
    predicted = np.array([model.predict(model.user_state(u), np.array([model.item_index[i]]))[0]
                          for u, i, _ in test])
    assert rmse(predicted, actual) < 0.85 * rmse(np.full(len(actual), model.mu), actual)
    weights = fitted.data.meta["blend_weights"]
    assert set(weights) == {"svdpp", "svd", "knn"} and all(w >= 0 for w in weights.values())
    assert "holdout_rmse" in fitted.data.meta["metrics"]


def test_top_k_finds_liked_items(fitted_and_test: tuple) -> None:
    fitted, test = fitted_and_test
    model = Recommender(fitted.data)
    u = np.array([model.user_index[x] for x, _, _ in test])
    i = np.array([model.item_index[x] for _, x, _ in test])
    relevant = relevant_sets(u, i, np.array([r for _, _, r in test]), model.like_threshold)
    seen = {user: model.user_state(model.users[user]).rated for user in relevant}
    hybrid = top_k_metrics(lambda user: model.score(model.user_state(model.users[user])).score, seen, relevant, 5)
    rng = np.random.default_rng(0)
    chance = top_k_metrics(lambda user: rng.random(len(model.items)), seen, relevant, 5)
    assert hybrid.precision > chance.precision + 0.1


def test_cold_item_borrows_from_similar_texts(fitted_and_test: tuple) -> None:
    fitted, _ = fitted_and_test
    model = Recommender(fitted.data)
    new = model.item_index["new"]
    assert new >= model.n_warm
    # "space laser robot" items are genre 0 (i0, i3, …): the new item's factors come from them.
    assert model.a["svd_qi"][new].any() and model.a["als_item"][new].any()


def test_save_and_load_round_trip(fitted_and_test: tuple, tmp_path: Path) -> None:
    from plait.models.recommender import RecommenderData

    fitted, _ = fitted_and_test
    fitted.data.save(tmp_path / "m")
    again = Recommender(RecommenderData.load(tmp_path / "m"))
    model = Recommender(fitted.data)
    state_a, state_b = model.user_state("u3"), again.user_state("u3")
    assert np.allclose(model.score(state_a).score, again.score(state_b).score)
    (tmp_path / "m" / "recommender.json").write_text("{}")
    from plait.errors import ModelFileError

    with pytest.raises(ModelFileError, match="format"):
        RecommenderData.load(tmp_path / "m")


def test_too_few_or_constant_ratings_are_refused() -> None:
    with pytest.raises(InputError, match="at least 20"):
        fit(table_of([("a", "x", 4.0)] * 5), config=FAST)
    rows = [(f"u{k}", f"i{k % 7}", 3.0) for k in range(50)]
    with pytest.raises(InputError, match="nothing to learn"):
        fit(table_of(rows), config=FAST)


# ----- the task functions, the catalog and the CLI ----------------------------------------------------

@pytest.fixture
def trained(fake_models: Runtime, tmp_path: Path) -> Runtime:
    rows, texts = synthetic(seed=3)
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("user,item,rating\n" + "".join(f"{u},{i},{r:g}\n" for u, i, r in rows), encoding="utf-8")
    items = tmp_path / "items.csv"
    items.write_text("id,title,genres\n" + "".join(f"{k},{v.title},{v.text.split('. ')[1]}\n"
                                                  for k, v in texts.items()) + "i999,Unrated,ghost blood\n",
                     encoding="utf-8")
    report = train_recommender(ratings, name="films", items=items, config=FAST, runtime=fake_models)
    assert report.users == 60 and report.cold_items == 1 and report.path.is_dir()
    return fake_models


def test_trained_model_is_a_catalog_entry(trained: Runtime) -> None:
    spec = trained.catalog.get("films")
    assert spec.capabilities == ("recommend",) and spec.backend == "recommender" and spec.version == 1
    assert "holdout_rmse" in spec.metrics
    assert isinstance(trained.model("films", Recommender), Recommender)
    with pytest.raises(CatalogError, match="already exists"):
        train_recommender(table_of(synthetic()[0]), name="films", config=FAST, runtime=trained)
    train_recommender(table_of(synthetic(seed=5)[0]), name="films", config=FAST, replace=True, runtime=trained)
    assert trained.catalog.get("films").version == 2
    with pytest.raises(CatalogError, match="built-in"):
        train_recommender(table_of(synthetic()[0]), name="smollm2", config=FAST, runtime=trained)
    with pytest.raises(InputError, match="cannot be a model name"):
        train_recommender(table_of(synthetic()[0]), name="my films!", config=FAST, runtime=trained)


def test_recommend_known_new_and_folded_in_users(trained: Runtime) -> None:
    known = recommend("u1", model="films", k=5)
    assert known.known_user and len(known.items) == 5 and known.strategy in ("hybrid", "collaborative")
    rated = set(trained.model("films", Recommender).user_state("u1").rated.tolist())
    model = trained.model("films", Recommender)
    assert not rated & {model.item_index[x.item] for x in known.items}
    scores = [x.score for x in known.items]
    assert scores == sorted(scores, reverse=True)

    stranger = recommend("nobody", model="films", k=3)
    assert not stranger.known_user and stranger.strategy == "popular" and len(stranger.items) == 3

    # A new user who loves genre 0 ("space laser robot": i0, i3, i6…) should be offered more of it.
    fan = recommend("fan", model="films", k=5, ratings={"i0": 5, "i3": 5, "i6": 5, "i1": 1, "i2": 1})
    assert fan.strategy in ("hybrid", "collaborative")
    genre0 = sum(int(x.item[1:]) % 3 == 0 for x in fan.items if x.item[1:].isdigit())
    assert genre0 >= 3

    content = recommend("u1", model="films", k=3, strategy="content")
    assert content.strategy == "content"


def test_predict_rating_and_its_errors(trained: Runtime) -> None:
    p = predict_rating("u1", "i0", model="films")
    assert 1.0 <= p.rating <= 5.0 and 0.0 <= p.p_like <= 1.0 and p.known_user and not p.cold_item
    assert predict_rating("u1", "i999", model="films").cold_item
    assert not predict_rating("stranger", "i0", model="films").known_user
    with pytest.raises(InputError, match="does not know item"):
        predict_rating("u1", "nope", model="films")
    with pytest.raises(InputError, match="outside the scale"):
        recommend("u1", model="films", ratings={"i0": 11})
    with pytest.raises(InputError, match="unknown item"):
        recommend("u1", model="films", ratings={"zzz": 4})
    with pytest.raises(InputError, match="not a number"):
        recommend("u1", model="films", ratings={"i0": "great"})  # type: ignore[dict-item]
    with pytest.raises(InputError, match="unknown strategy"):
        recommend("u1", model="films", strategy="magic")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="name a recommender"):
        recommend("u1")
    from plait.errors import CapabilityError

    with pytest.raises(CapabilityError, match="cannot recommend"):
        recommend("u1", model="fake-chat")


def test_cli_train_for_and_predict(fake_models: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("plait.tasks.recommend.RecommendConfig", lambda **kw: FAST.model_copy(update=kw))
    rows, _ = synthetic()
    ratings = tmp_path / "ratings.tsv"
    ratings.write_text("".join(f"{u}\t{i}\t{r:g}\n" for u, i, r in rows), encoding="utf-8")
    code, out, err = plait(capsys, "recommend", "train", str(ratings), "--name", "cli-films", "--json")
    assert code == 0, err
    assert json.loads(out)["users"] == 60
    code, out, err = plait(capsys, "recommend", "for", "u2", "-m", "cli-films", "-k", "4", "--json")
    data = json.loads(out)
    assert code == 0 and data["known_user"] and len(data["items"]) == 4
    code, out, err = plait(capsys, "recommend", "for", "ghost", "-m", "cli-films", "-k", "2")
    assert code == 0 and "popular" in err and out.count("\n") == 2
    code, out, _ = plait(capsys, "recommend", "predict", "u2", "i1", "-m", "cli-films")
    assert code == 0 and "P(like)" in out
    code, _, err = plait(capsys, "recommend", "for", "u2", "-m", "cli-films", "--rated", "i1")
    assert code == 4 and "ITEM=RATING" in err and "Traceback" not in err
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = plait(capsys, "recommend", "train", str(empty), "--name", "x")
    assert code == 4 and "empty" in err and "Traceback" not in err
