"""Benchmark: recommend on MovieLens-100k, see on packaged photos, speak-then-hear on everyday sentences.

    python bench/tasks_media.py          # writes bench/results/tasks_media.json

- recommend: fixed-seed 80/20 split of the 100,000 ratings. plait's hybrid recommender against the
  global-mean + user/item biases baseline (Surprise's BaselineOnly), trained on the same 80% in the same
  run: RMSE/MAE on the 20%, precision@10 and recall@10 (relevant = rated >= 4 in the test split, every
  unrated item ranked), training time. Popularity is shown too, as the usual top-k reference.
- see: EfficientNet-Lite0's top-3 for the packaged cat photo (scikit-image's chelsea), and images/s
  for decoding + classifying JPEG photos, batched vs one at a time.
- hear: eSpeak NG speaks 24 everyday sentences, PocketSphinx transcribes them; word error rate (checked
  against jiwer when installed) at 140 and at 175 (eSpeak's default) words per minute.
"""

from __future__ import annotations

import io
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, timed, write_results  # noqa: E402

SEED = 42
T = TypeVar("T")
CAT_CLASSES = range(281, 286)
SENTENCES = [
    "The meeting with Anna is moved to Tuesday afternoon.",
    "Please send me the report before the end of the week.",
    "I will call you back in ten minutes.",
    "The weather is nice today so we can go for a walk.",
    "Can you buy some milk and bread on the way home?",
    "The train to the city leaves at seven in the morning.",
    "She is reading a book about the history of the country.",
    "We need to finish the project by next month.",
    "My phone battery is almost empty.",
    "Let us have lunch together on Friday.",
    "The doctor said I should drink more water.",
    "Our flight was delayed by two hours.",
    "He forgot his keys at the office again.",
    "Could you turn the music down a little?",
    "The children are playing in the garden.",
    "I have a dentist appointment next Monday.",
    "The shop closes at six on weekdays.",
    "Thank you very much for your help yesterday.",
    "We are going to visit my parents this weekend.",
    "The new printer does not work with my laptop.",
    "Remember to pay the electricity bill.",
    "The bus was full so I walked to work.",
    "I would like a cup of coffee with milk please.",
    "The library is open until eight in the evening.",
]


def cpu_timed(fn: Callable[[], T]) -> tuple[T, float, float]:
    """Value, wall seconds and CPU seconds of this process (all threads): on a shared machine the wall time
    includes waiting for cores, the CPU time is closer to what the work costs on an idle one."""
    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    start_cpu = cpu()
    value, wall = timed(fn)
    return value, wall, cpu() - start_cpu


def bench_recommend(home: Path) -> dict[str, object]:
    from surprise import BaselineOnly, Dataset, Reader
    from tests.corpora import movielens_100k

    from plait.models.recommender import STRATEGIES, Recommender
    from plait.runtime import Runtime
    from plait.settings import load_settings
    from plait.tasks.recommend import train_recommender
    from plait.tasks.recommend_data import ItemText, RatingsTable
    from plait.tasks.recommend_eval import mae, relevant_sets, rmse, top_k_metrics

    ml = movielens_100k()
    r = ml.ratings
    perm = np.random.default_rng(SEED).permutation(len(r))
    cut = int(0.8 * len(r))
    train, test = r[perm[:cut]], r[perm[cut:]]
    actual = test["rating"].astype(np.float64)

    # Baseline: global mean + user and item biases (ALS-fitted, Surprise's defaults), same training ratings.
    trainset = Dataset(Reader(rating_scale=(1, 5))).construct_trainset(
        list(zip(train["user"].tolist(), train["item"].tolist(), train["rating"].tolist(), [None] * len(train),
                 strict=True)))
    baseline, base_seconds = timed(lambda: BaselineOnly(verbose=False).fit(trainset))
    base_pred = np.array([baseline.predict(int(u), int(i)).est for u, i in zip(test["user"], test["item"],
                                                                                 strict=True)])

    runtime = Runtime(load_settings(home=home))
    from plait.tasks.embed import embedder

    embedder(None, runtime)  # build/load the default embedder before the clock starts
    texts = {str(i): ItemText(t, f"{t} ({ml.years.get(i, '')}). {', '.join(ml.genres.get(i, ()))}")
             for i, t in ml.titles.items()}
    table = RatingsTable.from_rows(train["user"], train["item"], train["rating"], source="MovieLens-100k 80%")
    report, train_seconds, train_cpu = cpu_timed(lambda: train_recommender(table, name="ml100k-bench", items=texts,
                                                                           replace=True, runtime=runtime))
    model = runtime.model("ml100k-bench", Recommender)

    users, items = test["user"].astype(str), test["item"].astype(str)
    components: dict[str, np.ndarray] = {}
    predicted = np.zeros(len(test))
    order = np.argsort(users, kind="stable")
    starts = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1]])
    start = time.perf_counter()
    for rows in np.split(order, starts[1:]):
        state = model.user_state(users[rows[0]])
        idx = np.array([model.item_index[i] for i in items[rows]])
        predicted[rows] = model.predict(state, idx)
        for name, values in model.component_ratings(state, idx).items():
            components.setdefault(name, np.zeros(len(test)))[rows] = values
    predict_seconds = time.perf_counter() - start

    u_idx = np.array([model.user_index[u] for u in users])
    i_idx = np.array([model.item_index[i] for i in items])
    relevant = relevant_sets(u_idx, i_idx, test["rating"], 4.0)
    seen = {u: model.user_state(model.users[u]).rated for u in relevant}
    top_k: dict[str, dict[str, float]] = {}
    for strategy in STRATEGIES:
        m, seconds = timed(lambda s=strategy: top_k_metrics(
            lambda u: model.score(model.user_state(model.users[u]), s).score, seen, relevant, 10))
        top_k[strategy] = {"precision_at_10": round(m.precision, 4), "recall_at_10": round(m.recall, 4),
                           "users": m.users, "ms_per_user": round(1000 * seconds / max(m.users, 1), 2)}
    # The baseline ranks by its own predicted rating, i.e. by item bias (+ a per-user constant).
    item_bias = np.zeros(len(model.items))
    for inner, b in enumerate(baseline.bi):
        item_bias[model.item_index[str(trainset.to_raw_iid(inner))]] = b
    base_top = top_k_metrics(lambda u: item_bias, seen, relevant, 10)

    plait_rmse, base_rmse = rmse(predicted, actual), rmse(base_pred, actual)
    hybrid = top_k["hybrid"]
    return {
        "data": {"ratings": int(len(r)), "train": int(len(train)), "test": int(len(test)), "seed": SEED,
                 "users": len(model.users), "items": len(model.items),
                 "relevant": "test ratings >= 4; every item the user did not rate in training is ranked"},
        "baseline": {"name": "global mean + user/item biases (Surprise BaselineOnly)",
                     "rmse": round(base_rmse, 4), "mae": round(mae(base_pred, actual), 4),
                     "precision_at_10": round(base_top.precision, 4), "recall_at_10": round(base_top.recall, 4),
                     "train_seconds": round(base_seconds, 2)},
        "plait": {"name": "hybrid: SVD++ + SVD + item-kNN blend; ALS × P(like) ranking; MiniLM item texts",
                  "rmse": round(plait_rmse, 4), "mae": round(mae(predicted, actual), 4),
                  "precision_at_10": hybrid["precision_at_10"], "recall_at_10": hybrid["recall_at_10"],
                  "train_seconds": round(train_seconds, 1), "train_cpu_seconds": round(train_cpu, 1),
                  "predict_us_per_rating": round(1e6 * predict_seconds / len(test), 1),
                  "blend_weights": {k: round(v, 3) for k, v in report.blend_weights.items()},
                  "content_weight": report.content_weight,
                  "component_rmse": {k: round(rmse(v, actual), 4) for k, v in components.items()},
                  "top_k_by_strategy": top_k,
                  "holdout_metrics": {k: round(v, 4) for k, v in report.metrics.items()}},
        "ratios": {"rmse_plait_over_baseline": round(plait_rmse / base_rmse, 4),
                   "precision_at_10_plait_over_baseline": round(hybrid["precision_at_10"] / base_top.precision, 2)
                   if base_top.precision else None,
                   "precision_at_10_plait_over_popular": round(hybrid["precision_at_10"]
                                                               / top_k["popular"]["precision_at_10"], 2)},
        "targets": {"rmse_at_most_0.92": plait_rmse <= 0.92},
    }


def bench_see(home: Path) -> dict[str, object]:
    import skimage.data
    from PIL import Image

    from plait.runtime import Runtime
    from plait.settings import load_settings
    from plait.tasks.see import classifier, see_many

    def jpeg(array: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, "JPEG", quality=92)
        return buf.getvalue()

    runtime = Runtime(load_settings(home=home))
    model, load_seconds = timed(lambda: classifier(None, runtime))
    photos = {name: jpeg(getattr(skimage.data, name)()) for name in ("chelsea", "coffee", "astronaut", "rocket")}
    cat = see_many([photos["chelsea"]], k=3, model=model)[0]
    others = {name: [(x.label, round(x.score, 3)) for x in see_many([data], k=3, model=model)[0].labels]
              for name, data in photos.items() if name != "chelsea"}
    batch = list(photos.values()) * 8  # 32 photos
    _, batched, batched_cpu = cpu_timed(lambda: see_many(batch, k=5, model=model))
    _, single, single_cpu = cpu_timed(lambda: [see_many([p], k=5, model=model) for p in batch])
    return {
        "model": model.spec.name,
        "load_seconds": round(load_seconds, 2),
        "cat_photo_top3": [(x.label, round(x.score, 3), x.index) for x in cat.labels],
        "cat_in_top3": any(x.index in CAT_CLASSES for x in cat.labels),
        "other_photos_top3": others,
        "images": len(batch),
        "images_per_second_batched": round(len(batch) / batched, 1),
        "images_per_second_one_at_a_time": round(len(batch) / single, 1),
        "cpu_ms_per_image_batched": round(1000 * batched_cpu / len(batch), 1),
        "cpu_ms_per_image_one_at_a_time": round(1000 * single_cpu / len(batch), 1),
        "batch_size": model.batch_size,
        "note": "JPEG decoding + resize + EfficientNet-Lite0 at 224 px, PyTorch CPU",
    }


def bench_hear(home: Path) -> dict[str, object]:
    from plait.runtime import Runtime
    from plait.settings import load_settings
    from plait.tasks.hear import hear_many, recognizer, word_error_rate
    from plait.tasks.speak import speak

    runtime = Runtime(load_settings(home=home))
    model, load_seconds = timed(lambda: recognizer(None, runtime))
    out: dict[str, object] = {"model": model.spec.name, "voice": "en-us (eSpeak NG)", "sentences": len(SENTENCES),
                              "load_seconds": round(load_seconds, 2)}
    for rate in (140, 175):
        speech, speak_seconds = timed(lambda r=rate: [speak(s, rate=r) for s in SENTENCES])
        heard, hear_seconds, hear_cpu = cpu_timed(lambda sp=speech: hear_many([s.audio for s in sp], model=model))
        hypotheses = [h.text for h in heard]
        audio_seconds = sum(s.duration for s in speech)
        result: dict[str, object] = {
            "wer": round(word_error_rate(SENTENCES, hypotheses), 4),
            "audio_seconds": round(audio_seconds, 1),
            "speak_seconds": round(speak_seconds, 2),
            "hear_seconds": round(hear_seconds, 2),
            "hear_real_time_factor": round(hear_seconds / audio_seconds, 3),
            "hear_cpu_seconds_per_audio_second": round(hear_cpu / audio_seconds, 3),
            "exact_sentences": sum(word_error_rate([s], [h]) == 0 for s, h in zip(SENTENCES, hypotheses,
                                                                                   strict=True)),
            "examples": [{"said": s, "heard": h} for s, h in list(zip(SENTENCES, hypotheses, strict=True))[:5]],
        }
        try:
            import jiwer

            norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                                  jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
            result["wer_jiwer"] = round(jiwer.wer(SENTENCES, hypotheses, reference_transform=norm,
                                                  hypothesis_transform=norm), 4)
        except ImportError:
            result["wer_jiwer"] = None
        out[f"rate_{rate}_wpm"] = result
    return out


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="plait-bench-") as tmp:
        home = Path(os.environ.get("PLAIT_BENCH_HOME", tmp))
        results = {
            "load_1min_at_start": load_at_start,
            "recommend": bench_recommend(home),
            "see": bench_see(home),
            "hear": bench_hear(home),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    write_results("tasks_media", results)


if __name__ == "__main__":
    main()
