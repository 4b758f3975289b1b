"""``tune``: examples in, a new catalog entry ``NAME@V`` out, with the run recorded.

The steps, in order: load and clean the examples (:mod:`~plait.adapt.datasets`); split them, stratified,
into train/validation/test; train with the chosen method into a staging folder, logging every epoch
(:mod:`~plait.adapt.tracking`); tune decision thresholds on validation when asked; evaluate once on the
test split (:mod:`~plait.adapt.evaluate`); draw the learning curves and confusion matrix; and only then
publish the files and register the entry (:mod:`~plait.adapt.registry`). An error or Ctrl-C at any step
closes the run as failed or interrupted and removes the staging folder: nothing is half-registered.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.adapt import evaluate
from plait.adapt.config import TuneConfig
from plait.adapt.datasets import Dataset, Split, length_stats, load_dataset, oversample, stratified_split
from plait.adapt.registry import check_name, publish, staging_folder
from plait.adapt.tracking import RunTracker, epoch_metrics
from plait.adapt.training import Trained
from plait.models.spec import ModelSpec
from plait.runtime import Runtime, get_runtime

Say = Callable[[str], None]


@dataclass(frozen=True)
class TuneResult:
    model: str  # the registered entry, NAME@V
    run_id: str
    metrics: dict[str, Any]  # test metrics (and thresholds, per-label figures)
    trainable_params: int
    total_params: int
    duration_s: float
    notes: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _quiet(_: str) -> None:
    pass


def tune(name: str, data: str | Path | Dataset, config: TuneConfig | None = None, *, runtime: Runtime | None = None,
         say: Say | None = None) -> TuneResult:
    """Train ``name`` on ``data`` (a path or a loaded :class:`Dataset`) and register it as ``name@V``."""
    config = config or TuneConfig()
    rt = runtime or get_runtime()
    say = say or _quiet
    check_name(name)
    dataset = data if isinstance(data, Dataset) else load_dataset(data, config.task, dedupe=config.dedupe)
    if dataset.task != config.task:
        dataset = load_dataset(dataset.source, config.task, dedupe=config.dedupe)
    for note in dataset.notes:
        say(note)
    stats = length_stats(dataset).as_dict()
    split = stratified_split(dataset, validation=config.validation, test=config.test, seed=config.seed)
    train = oversample(split.train, seed=config.seed) if config.oversample else split.train
    split = Split(train, split.validation, split.test)
    say(f"{len(dataset)} examples: {len(split.train)} train, {len(split.validation)} validation, "
        f"{len(split.test)} test")

    models_dir = rt.settings.models_dir
    tracker = RunTracker(rt.store, rt.settings.home / "runs", name=name, task=config.task, method=config.method,
                         data_hash=dataset.fingerprint(), data_source=dataset.source,
                         params=config.model_dump(mode="json"))
    start = time.monotonic()
    staging: Path | None = None
    try:
        with tracker:
            staging = staging_folder(models_dir, name, tracker.id)
            trained = _train(split, config, rt, staging, tracker, say)
            metrics = _evaluate(split, config, trained)
            tracker.log(trained.epochs_run, "test", {k: v for k, v in metrics.items() if isinstance(v, float)})
            plots = _plots(rt, tracker, metrics, name)
            duration = time.monotonic() - start
            provenance = {
                "run_id": tracker.id, "method": config.method, "task": config.task, "base": trained.base,
                "data_source": dataset.source, "data_hash": dataset.fingerprint(), "examples": len(dataset),
                "split": {"train": len(split.train), "validation": len(split.validation), "test": len(split.test)},
                "epochs_run": trained.epochs_run, "best_epoch": trained.best_epoch,
                "trainable_params": trained.trainable_params, "total_params": trained.total_params,
                "duration_s": round(duration, 1), "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "params": config.model_dump(mode="json"),
            }
            if "thresholds" in metrics:
                trained.options["thresholds"] = [metrics["thresholds"][label] for label in trained.options["labels"]]

            def make_spec(full_name: str, version: int, folder: Path) -> ModelSpec:
                return ModelSpec(
                    name=full_name, backend="adapted", capabilities=_capabilities(config), source=str(folder),
                    description=f"{config.method} {config.task} model tuned from {trained.base} on "
                                f"{len(dataset)} examples", version=version, options=trained.options,
                    metrics={k: round(v, 6) for k, v in metrics.items() if isinstance(v, float) and v == v},
                    provenance=provenance)

            spec = publish(rt.catalog, models_dir, name, staging, make_spec)
            tracker.finish("completed", metrics=metrics, model=spec.name)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    say(f"registered {spec.name}")
    return TuneResult(spec.name, tracker.id, metrics, trained.trainable_params, trained.total_params,
                      round(time.monotonic() - start, 2), dataset.notes, tuple(plots), stats)


def _capabilities(config: TuneConfig) -> tuple[Any, ...]:
    if config.task == "instruct":
        return ("chat", "complete")
    return ("regress",) if config.task == "regress" else ("classify",)


def _train(split: Split, config: TuneConfig, rt: Runtime, folder: Path, tracker: RunTracker, say: Say) -> Trained:
    if config.task == "instruct":
        from plait.adapt.chat import train_chat

        return train_chat(split, config, rt, folder, tracker, say)
    from plait.adapt.finetune import train_encoder, train_head

    if config.method == "head":
        return train_head(split, config, rt, folder, tracker, say)
    return train_encoder(split, config, rt, folder, tracker, say)


def _evaluate(split: Split, config: TuneConfig, trained: Trained) -> dict[str, Any]:
    """Test metrics; thresholds (when asked) are chosen on validation outputs only."""
    import numpy as np

    from plait.tasks.calibration import sigmoid, softmax

    if config.task == "instruct":
        return dict(trained.extra_metrics)
    if config.task == "regress":
        mean, std = trained.options["target_mean"], trained.options["target_std"]
        report = evaluate.regression_report(split.test.targets(), trained.test_outputs[:, 0] * std + mean)
        return {**report.scalars(), "n": report.n}
    labels = split.train.labels
    if config.task == "multilabel":
        thresholds = (evaluate.tune_multilabel_thresholds(sigmoid(trained.validation_outputs),
                                                          split.validation.label_matrix())
                      if config.tune_threshold else None)
        rep = evaluate.multilabel_report(labels, split.test.label_matrix(), sigmoid(trained.test_outputs),
                                         thresholds)
    else:
        thresholds = (evaluate.tune_thresholds(softmax(trained.validation_outputs),
                                               np.asarray(split.validation.label_index()))
                      if config.tune_threshold else None)
        rep = evaluate.classification_report(labels, np.asarray(split.test.label_index()),
                                             softmax(trained.test_outputs), thresholds)
    out: dict[str, Any] = {**rep.scalars(), "confusion": rep.confusion, "labels": list(labels),
                           "per_label": {k: vars(v) for k, v in rep.per_label.items()}}
    if thresholds is not None:
        out["thresholds"] = rep.thresholds
    return out


def _plots(rt: Runtime, tracker: RunTracker, metrics: dict[str, Any], name: str) -> list[str]:
    from plait.adapt import plots
    from plait.errors import MissingDependency

    out = []
    try:
        curve = plots.learning_curves(epoch_metrics(rt.store, tracker.id), tracker.dir / "learning_curves.png",
                                      title=f"{name} ({tracker.method})")
        if curve:
            out.append(str(curve))
        if "confusion" in metrics and "labels" in metrics and all(len(r) == len(metrics["labels"])
                                                                  for r in metrics["confusion"]):
            out.append(str(plots.confusion_matrix(metrics["confusion"], metrics["labels"],
                                                  tracker.dir / "confusion_matrix.png")))
    except MissingDependency:
        pass  # matplotlib absent: the run's numbers are all in the database
    return out
