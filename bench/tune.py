"""Benchmark: plait tune on real data, against TF-IDF + logistic regression, in the same run.

1. classify: the 200 real 20-Newsgroups posts (alt.atheism vs sci.space, group-naming headers stripped),
   5-fold stratified cross-validation. Per fold, 10% of the training part is held out for validation
   (early stopping). Methods: plait's head on frozen embeddings (the default embedder), full fine-tune
   of MiniLM, LoRA on MiniLM, and the baseline TF-IDF + logistic regression with the same tuning budget
   (same train part, C chosen on the same validation part; the old untuned C=10 kept for comparison).
   Accuracy, macro-F1, training time and trainable parameters.
2. imbalance: 1:9 subsamples (all 100 sci.space posts, 11 alt.atheism posts; three different draws),
   5-fold each; minority recall and macro-F1 with no correction, class weights, oversampling, a decision
   threshold tuned on validation, and weights + threshold; the baseline with and without
   class_weight="balanced", untuned (C=10) and given the same tuning budget (C from a grid chosen on the
   same validation part, and a threshold tuned there).
3. instruct: LoRA on SmolLM2 (read from the packaged GGUF) to write news headlines in a fixed style
   ("HEADLINE: " and the story's lead in Title Case, at most ten words) from real Lee news articles;
   the held-out answer loss before and after, and the outputs of the base and tuned models on held-out
   articles: how many follow the format, and word overlap (ROUGE-1 F1) with the reference.
4. faithful explanations: for the fine-tuned model of fold 1 (integrated gradients) and the head model
   (occlusion), deleting the top-k attributed words vs k random words (within what the model sees).

Run: python bench/tune.py [--sections classify,imbalance,instruct,explain] [--quick]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.corpora import lee_articles, newsgroups, split_sentences  # noqa: E402

from _common import peak_rss_mb, write_results  # noqa: E402
from plait.adapt import TuneConfig  # noqa: E402
from plait.adapt.datasets import Dataset, Example, Split, oversample, stratified_split  # noqa: E402
from plait.adapt.evaluate import classification_report, decide, tune_thresholds  # noqa: E402
from plait.runtime import Runtime  # noqa: E402
from plait.settings import load_settings  # noqa: E402
from plait.tasks.calibration import softmax  # noqa: E402


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quiet(_: str) -> None:
    pass


def posts_dataset() -> Dataset:
    posts = newsgroups()
    examples = tuple(Example(p.text, labels=(p.label,), source=f"post {i}") for i, p in enumerate(posts))
    return Dataset("classify", examples, tuple(sorted({p.label for p in posts})), "mini 20-Newsgroups")


def folds(ds: Dataset, k: int, seed: int) -> list[tuple[list[int], list[int]]]:
    from sklearn.model_selection import StratifiedKFold

    y = ds.label_index()
    return [(list(tr), list(te)) for tr, te in
            StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)]


def fold_split(ds: Dataset, train_idx: list[int], test_idx: list[int], seed: int) -> Split:
    """The fold's test part, and its training part cut into train/validation (10%, stratified)."""
    train_part = ds.subset(train_idx)
    inner = stratified_split(train_part, validation=0.1, test=0.0, seed=seed)
    return Split(inner.train, inner.validation, ds.subset(test_idx))


def tfidf_lr(train: Dataset, test: Dataset, balanced: bool = False) -> tuple[np.ndarray, float, int]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vec = TfidfVectorizer(sublinear_tf=True, min_df=1, ngram_range=(1, 2))
    x = vec.fit_transform(train.texts)
    lr = LogisticRegression(max_iter=2000, C=10.0, class_weight="balanced" if balanced else None)
    lr.fit(x, train.label_index())
    seconds = time.perf_counter() - start
    proba = lr.predict_proba(vec.transform(test.texts))
    return proba, seconds, int(lr.coef_.size + lr.intercept_.size)


C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def tfidf_lr_tuned(split: Split, labels: tuple[str, ...], *, balanced: bool = False, threshold: bool = False,
                   ) -> tuple[np.ndarray, float, int, dict[str, Any]]:
    """The baseline with the tuning budget plait's methods get: the same train part, C chosen on the same
    validation part (macro-F1), and with ``threshold`` a decision threshold tuned there too. Returns test
    probabilities (one-hot after a threshold), training seconds (grid included), parameters and choices."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    start = time.perf_counter()
    vec = TfidfVectorizer(sublinear_tf=True, min_df=1, ngram_range=(1, 2))
    x = vec.fit_transform(split.train.texts)
    xv, xt = vec.transform(split.validation.texts), vec.transform(split.test.texts)
    y, yv = split.train.label_index(), np.asarray(split.validation.label_index())
    weight = "balanced" if balanced else None
    scores = {}
    for c in C_GRID:
        model = LogisticRegression(max_iter=2000, C=c, class_weight=weight).fit(x, y)
        scores[c] = f1_score(yv, model.predict(xv), average="macro")
    best = max(C_GRID, key=lambda c: (scores[c], -c))  # ties: the stronger regularisation
    lr = LogisticRegression(max_iter=2000, C=best, class_weight=weight).fit(x, y)
    proba = lr.predict_proba(xt)
    chosen: dict[str, Any] = {"C": best}
    if threshold:
        t = tune_thresholds(lr.predict_proba(xv), yv)
        proba = np.eye(len(labels))[decide(proba, t)]
        chosen["threshold"] = t
    return proba, time.perf_counter() - start, int(lr.coef_.size + lr.intercept_.size), chosen


def run_method(method: str, split: Split, config: TuneConfig, rt: Runtime) -> dict[str, Any]:
    from plait.adapt.finetune import train_encoder, train_head

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        trainer = train_head if method == "head" else train_encoder
        trained = trainer(split, config, rt, Path(folder), None, quiet)
        seconds = time.perf_counter() - start
        files = sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
    return {"trained": trained, "seconds": seconds, "bytes": files}


def summarise(reports: list[Any], seconds: list[float], params: int, extra: dict[str, Any] | None = None
              ) -> dict[str, Any]:
    acc = [r.accuracy for r in reports]
    f1 = [r.macro_f1 for r in reports]
    return {"accuracy_mean": float(np.mean(acc)), "accuracy_std": float(np.std(acc)),
            "macro_f1_mean": float(np.mean(f1)), "macro_f1_std": float(np.std(f1)),
            "accuracy_per_fold": [round(a, 4) for a in acc], "ece_mean": float(np.mean([r.ece for r in reports])),
            "train_seconds_mean": float(np.mean(seconds)), "train_seconds_total": float(np.sum(seconds)),
            "trainable_params": params, **(extra or {})}


# 1. classification ------------------------------------------------------------------------------------


def bench_classify(rt: Runtime, args: argparse.Namespace, keep: dict[str, Any]) -> dict[str, Any]:
    ds = posts_dataset()
    labels = ds.labels
    methods = {
        "head": TuneConfig(method="head", seed=0),
        "finetune": TuneConfig(method="finetune", epochs=args.finetune_epochs, max_length=128, seed=0),
        "lora": TuneConfig(method="lora", epochs=args.lora_epochs, max_length=128, seed=0),
    }
    methods = {m: c for m, c in methods.items() if m in args.methods.split(",")}
    baselines = ("tfidf_logreg", "tfidf_logreg_fixed_c")
    results: dict[str, dict[str, Any]] = {m: {"reports": [], "seconds": [], "params": 0, "total": 0, "bytes": 0}
                                          for m in [*methods, *baselines]}
    chosen_c = []
    for fold, (tr, te) in enumerate(folds(ds, args.folds, seed=0)):
        split = fold_split(ds, tr, te, seed=fold)
        y_test = np.asarray(split.test.label_index())
        # The fair baseline: same train part, C chosen on the same validation part as plait's early stopping.
        proba, seconds, n, chosen = tfidf_lr_tuned(split, labels)
        chosen_c.append(chosen["C"])
        r = results["tfidf_logreg"]
        r["reports"].append(classification_report(labels, y_test, proba))
        r["seconds"].append(seconds)
        r["params"] = n
        # The earlier, untuned baseline (C=10, trained on train + validation), kept to restate the figure.
        proba, seconds, n = tfidf_lr(Dataset("classify", split.train.examples + split.validation.examples, labels),
                                     split.test)
        r = results["tfidf_logreg_fixed_c"]
        r["reports"].append(classification_report(labels, y_test, proba))
        r["seconds"].append(seconds)
        r["params"] = n
        for name, config in methods.items():
            out = run_method(name, split, config, rt)
            trained = out["trained"]
            rep = classification_report(labels, y_test, softmax(trained.test_outputs.astype(np.float64)))
            r = results[name]
            r["reports"].append(rep)
            r["seconds"].append(out["seconds"])
            r["params"], r["total"], r["bytes"] = trained.trainable_params, trained.total_params, out["bytes"]
            say(f"fold {fold + 1}: {name} accuracy {rep.accuracy:.3f} macro-F1 {rep.macro_f1:.3f} "
                f"in {out['seconds']:.0f} s")
            if fold == 0 and name in ("finetune", "head"):
                keep[f"{name}_split"] = split
        say(f"fold {fold + 1}: tfidf_logreg accuracy {results['tfidf_logreg']['reports'][-1].accuracy:.3f}")
    out_json = {}
    for name, r in results.items():
        extra = {"total_params": r["total"], "model_bytes": r["bytes"]} if name in methods else {}
        out_json[name] = summarise(r["reports"], r["seconds"], r["params"], extra)
    base_f1 = out_json["tfidf_logreg"]["macro_f1_mean"]
    for name in methods:
        out_json[name]["macro_f1_minus_baseline"] = out_json[name]["macro_f1_mean"] - base_f1
    out_json["folds"] = args.folds
    out_json["tfidf_logreg"]["c_chosen_per_fold"] = chosen_c
    out_json["tfidf_logreg"]["tuning"] = f"C from {list(C_GRID)} by validation macro-F1, per fold"
    out_json["settings"] = {m: c.model_dump(mode="json") for m, c in methods.items()}
    return out_json


# 2. imbalance -----------------------------------------------------------------------------------------


def bench_imbalance(rt: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    posts = newsgroups()
    majority, minority = "sci.space", "alt.atheism"
    variants = {
        "none": TuneConfig(method="head"),
        "class_weights": TuneConfig(method="head", class_weights=True),
        "oversample": TuneConfig(method="head", oversample=True),
        "threshold": TuneConfig(method="head", tune_threshold=True),
        "class_weights+threshold": TuneConfig(method="head", class_weights=True, tune_threshold=True),
    }
    # Baselines: untuned (C=10 on train + validation, as before), and given plait's tuning budget (C on the
    # validation part; a threshold there too), plain and with class weights.
    tuned_baselines = {"tfidf_logreg_tuned_c": (False, False), "tfidf_logreg_tuned_c+threshold": (False, True),
                       "tfidf_logreg_balanced_tuned_c": (True, False),
                       "tfidf_logreg_balanced_tuned_c+threshold": (True, True)}
    pooled: dict[str, tuple[list[int], list[int]]] = {v: ([], []) for v in [*variants, "tfidf_logreg",
                                                                            "tfidf_logreg_balanced",
                                                                            *tuned_baselines]}
    for draw in range(args.draws):
        rng = random.Random(100 + draw)
        keep = [p for p in posts if p.label == majority] + rng.sample([p for p in posts if p.label == minority], 11)
        ds = Dataset("classify", tuple(Example(p.text, labels=(p.label,)) for p in keep),
                     (minority, majority), f"1:9 draw {draw}")
        for fold, (tr, te) in enumerate(folds(ds, args.folds, seed=draw)):
            split = fold_split(ds, tr, te, seed=fold)
            y_test = split.test.label_index()
            full_train = Dataset("classify", split.train.examples + split.validation.examples, ds.labels)
            for name, balanced in (("tfidf_logreg", False), ("tfidf_logreg_balanced", True)):
                proba, _, _ = tfidf_lr(full_train, split.test, balanced=balanced)
                pooled[name][0].extend(y_test)
                pooled[name][1].extend(np.argmax(proba, axis=1).tolist())
            for name, (balanced, threshold) in tuned_baselines.items():
                proba, _, _, _ = tfidf_lr_tuned(split, ds.labels, balanced=balanced, threshold=threshold)
                pooled[name][0].extend(y_test)
                pooled[name][1].extend(np.argmax(proba, axis=1).tolist())
            for name, config in variants.items():
                train = oversample(split.train, seed=fold) if config.oversample else split.train
                out = run_method("head", Split(train, split.validation, split.test), config, rt)
                trained = out["trained"]
                t = (tune_thresholds(softmax(trained.validation_outputs.astype(np.float64)),
                                     np.asarray(split.validation.label_index()))
                     if config.tune_threshold else None)
                pred = decide(softmax(trained.test_outputs.astype(np.float64)), t)
                pooled[name][0].extend(y_test)
                pooled[name][1].extend(pred.tolist())
        say(f"imbalance draw {draw + 1}/{args.draws} done")
    out: dict[str, Any] = {"minority": minority, "ratio": "11:100", "draws": args.draws, "folds": args.folds,
                           "method": "head on frozen embeddings"}
    for name, (y, pred) in pooled.items():
        onehot = np.eye(2)[np.asarray(pred)]
        rep = classification_report((minority, majority), np.asarray(y), onehot)
        out[name] = {"minority_recall": rep.per_label[minority].recall,
                     "minority_precision": rep.per_label[minority].precision,
                     "macro_f1": rep.macro_f1, "accuracy": rep.accuracy, "minority_test_examples":
                     rep.per_label[minority].support, "confusion": rep.confusion}
    return out


# 3. instruct ------------------------------------------------------------------------------------------


PROMPT = "Write a headline for this news story.\n\n{story}"
FORMAT = re.compile(r"^HEADLINE: (\S+(?: \S+){1,11})$")


def headline(article: str) -> str:
    lead = split_sentences(article)[0] if split_sentences(article) else article
    words = re.sub(r"[^\w\s'-]", "", lead).split()[:10]
    return "HEADLINE: " + " ".join(w[:1].upper() + w[1:] for w in words)


def story(article: str, words: int = 60) -> str:
    return " ".join(article.split()[:words])


def rouge1(candidate: str, reference: str) -> float:
    from collections import Counter

    c = Counter(re.findall(r"\w+", candidate.lower()))
    r = Counter(re.findall(r"\w+", reference.lower()))
    overlap = sum((c & r).values())
    if not overlap:
        return 0.0
    p, rec = overlap / sum(c.values()), overlap / sum(r.values())
    return 2 * p * rec / (p + rec)


def follows_format(text: str) -> bool:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if len(lines) != 1 or not FORMAT.match(lines[0].strip()):
        return False
    words = lines[0].strip().removeprefix("HEADLINE: ").split()
    return all(w[:1].isupper() or not w[:1].isalpha() for w in words)


def bench_instruct(rt: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    from plait.adapt.chat import base_generator_spec
    from plait.models.base import GenerationOptions, Message, TextGenerator
    from plait.models.hf import TransformersGenerator

    articles = [a for a in lee_articles() if len(a.split()) > 60]
    rng = random.Random(7)
    rng.shuffle(articles)
    n_train, n_val, n_test = args.instruct_train, 8, args.instruct_test
    pick = articles[:n_train + n_val + n_test]
    examples = tuple(Example(PROMPT.format(story=story(a)), response=headline(a), source=f"lee {i}")
                     for i, a in enumerate(pick))
    split = Split(Dataset("instruct", examples[:n_train]), Dataset("instruct", examples[n_train:n_train + n_val]),
                  Dataset("instruct", examples[n_train + n_val:]))
    config = TuneConfig(task="instruct", method="lora", epochs=args.instruct_epochs, max_length=160, batch_size=4,
                        learning_rate=1e-3, seed=0)
    with tempfile.TemporaryDirectory() as folder:
        from plait.adapt.tracking import RunTracker

        tracker = RunTracker(rt.store, rt.settings.home / "runs", name="headline", task="instruct", method="lora",
                             data_hash="bench", data_source="lee", params=config.model_dump(mode="json"),
                             tensorboard=False)
        from plait.adapt.chat import train_chat

        # Convert the GGUF once before timing training (kept for later loads).
        start = time.perf_counter()
        base_spec = base_generator_spec(rt.catalog.get("smollm2"), rt.settings)
        convert_seconds = time.perf_counter() - start
        start = time.perf_counter()
        trained = train_chat(split, config, rt, Path(folder), tracker, say)
        train_seconds = time.perf_counter() - start
        tracker.finish("completed")
        from plait.adapt.tracking import epoch_metrics

        curve = epoch_metrics(rt.store, tracker.id)
        # Register it as plait tune would, then load it by name like any chat model.
        from plait.adapt.registry import publish
        from plait.models.spec import ModelSpec

        staging = rt.settings.models_dir / f".headline.{tracker.id}.partial"
        import shutil

        shutil.copytree(folder, staging)
        spec = publish(rt.catalog, rt.settings.models_dir, "headline", staging,
                       lambda n, v, f: ModelSpec(name=n, backend="adapted", capabilities=("chat", "complete"),
                                                 source=str(f), version=v, options=trained.options))
    opts = GenerationOptions(max_tokens=28, temperature=0.0)
    tuned = rt.model(spec.name, TextGenerator)
    base = TransformersGenerator(base_spec, rt.settings)
    rows = []
    for e in split.test.examples:
        messages = [Message("user", e.text)]
        b = base.chat(messages, opts).text
        t = tuned.chat(messages, opts).text
        rows.append({"reference": e.response, "base": b, "tuned": t})
    out = {
        "task": "news story (Lee corpus, first 60 words) -> 'HEADLINE: ' + its lead in Title Case, <= 10 words",
        "train_examples": n_train, "validation_examples": n_val, "test_examples": n_test,
        "epochs_run": trained.epochs_run, "best_epoch": trained.best_epoch,
        "trainable_params": trained.trainable_params, "total_params": trained.total_params,
        "gguf_conversion_seconds": convert_seconds, "train_seconds": train_seconds,
        "train_loss_per_epoch": [v for _, v in curve.get("train", {}).get("loss", [])],
        "validation_loss_per_epoch": [v for _, v in curve.get("validation", {}).get("loss", [])],
        **{k: float(v) for k, v in trained.extra_metrics.items()},
        "format_rate_base": float(np.mean([follows_format(r["base"]) for r in rows])),
        "format_rate_tuned": float(np.mean([follows_format(r["tuned"]) for r in rows])),
        "rouge1_base": float(np.mean([rouge1(r["base"], r["reference"]) for r in rows])),
        "rouge1_tuned": float(np.mean([rouge1(r["tuned"], r["reference"]) for r in rows])),
        "examples": rows[:4],
        "served_as": spec.name,
    }
    rt.pool.unload(spec.name)
    return out


# 4. faithful explanations -------------------------------------------------------------------------------


def bench_explain(rt: Runtime, args: argparse.Namespace, keep: dict[str, Any]) -> dict[str, Any]:
    from plait.adapt.finetune import train_encoder, train_head
    from plait.adapt.serving import load
    from plait.models.spec import ModelSpec
    from plait.tasks.explain import deletion_drop, explain

    ds = posts_dataset()
    out: dict[str, Any] = {"k": args.k, "random_trials": 5}
    for method, how in (("finetune", "integrated-gradients"), ("head", "occlusion")):
        split = keep.get(f"{method}_split")
        if split is None:
            tr, te = folds(ds, args.folds, seed=0)[0]
            split = fold_split(ds, tr, te, seed=0)
        config = TuneConfig(method=method, epochs=args.finetune_epochs if method == "finetune" else None)
        folder = Path(tempfile.mkdtemp())
        trainer = train_head if method == "head" else train_encoder
        trained = trainer(split, config, rt, folder, None, quiet)
        spec = ModelSpec(name=f"bench-{method}", backend="adapted", capabilities=("classify",), source=str(folder),
                         options=trained.options)
        clf = load(spec, rt.settings, rt.pool)
        texts = split.test.texts[:args.explain_texts]
        wins, margins = 0, []
        start = time.perf_counter()
        for text in texts:
            e = explain(clf, text, method=how, steps=args.ig_steps)  # type: ignore[arg-type]
            seen = _seen_words(clf, e)
            top, rand = deletion_drop(clf, e, args.k, candidates=seen)
            wins += top > rand
            margins.append(top - rand)
        out[method] = {"method": how, "examples": len(texts), "top_k_beats_random": wins,
                       "share": wins / len(texts), "mean_drop_margin": float(np.mean(margins)),
                       "seconds_per_explanation": (time.perf_counter() - start) / len(texts)}
        say(f"explain {method} ({how}): top-{args.k} deletion beats random on {wins}/{len(texts)}")
    return out


def _seen_words(clf: Any, e: Any) -> list[Any]:
    """Words inside the model's truncation window (deleting words it never reads changes nothing)."""
    scorer = getattr(clf, "torch_scorer", None)
    if scorer is not None:
        enc = scorer.tokenizer([e.text], truncation=True, max_length=scorer.max_length, return_offsets_mapping=True)
        end = max(b for _, b in enc["offset_mapping"][0])
    else:
        tokens = 256  # the ONNX embedder's max_length; about 0.75 words a token is generous
        end = len(" ".join(e.text.split()[:int(tokens * 0.6)]))
    return [w for w in e.words if w.end <= end]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sections", default="classify,imbalance,instruct,explain")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--methods", default="head,finetune,lora",
                        help="plait's methods in the classify section (the baselines always run)")
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--lora-epochs", type=int, default=1)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--instruct-train", type=int, default=24)
    parser.add_argument("--instruct-test", type=int, default=16)
    parser.add_argument("--instruct-epochs", type=int, default=6)
    parser.add_argument("--explain-texts", type=int, default=30)
    parser.add_argument("--ig-steps", type=int, default=24)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--home", default=None, help="PLAIT_HOME to use (default: a temporary one)")
    args = parser.parse_args()
    sections = args.sections.split(",")
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="plait-bench-tune-"))
    rt = Runtime(load_settings(home=home))
    load_start = os.getloadavg()[0]
    results: dict[str, Any] = {"load_1min_at_start": load_start}
    keep: dict[str, Any] = {}
    total = time.perf_counter()
    result_name = ("tune" if set(sections) >= {"classify", "imbalance", "instruct", "explain"}
                   else "tune_" + "_".join(sections))
    for name in sections:
        start = time.perf_counter()
        say(f"section {name}…")
        if name == "classify":
            results[name] = bench_classify(rt, args, keep)
        elif name == "imbalance":
            results[name] = bench_imbalance(rt, args)
        elif name == "instruct":
            results[name] = bench_instruct(rt, args)
        elif name == "explain":
            results[name] = bench_explain(rt, args, keep)
        results[name]["section_seconds"] = time.perf_counter() - start
        results[name]["load_1min_after"] = os.getloadavg()[0]
        # Written after every section, so a long run's finished sections are kept if it is stopped.
        results["total_seconds"] = time.perf_counter() - total
        results["peak_rss_mb"] = peak_rss_mb()
        results["load_1min_at_end"] = os.getloadavg()[0]
        results["sections_done"] = [s for s in sections if s in results]
        write_results(result_name, results)
    rt.close()


if __name__ == "__main__":
    main()
