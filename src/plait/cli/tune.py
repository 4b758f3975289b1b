"""`plait tune NAME --data PATH`: train a model on your own examples and register it as NAME@V."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import state


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(tune)


def _say(message: str) -> None:
    print(f"plait: {message}", file=sys.stderr, flush=True)


def tune(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="name of the tuned model; it is registered as NAME@1, NAME@2…")],
    data: Annotated[Path, typer.Option("--data", "-d", help="CSV/JSONL file (text,label), or a folder with one "
                                       "sub-folder per label (mail folders work as they are)")],
    task: Annotated[str, typer.Option(help="classify, multilabel, regress, or instruct (prompt/response pairs "
                                      "for a chat model)")] = "classify",
    method: Annotated[str, typer.Option(help="head (seconds, on frozen embeddings), finetune (every weight of "
                                        "a small encoder) or lora (adapters; the only one for instruct)")] = "head",
    base: Annotated[str | None, typer.Option(help="model to start from (head: an embedder, default the "
                                             "embed_model setting; finetune/lora: minilm; instruct: smollm2)")] = None,
    epochs: Annotated[int | None, typer.Option(help="most epochs (early stopping may end sooner)")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="learning rate")] = None,
    batch_size: Annotated[int, typer.Option(help="examples per step")] = 16,
    max_length: Annotated[int, typer.Option(help="tokens of each example the model sees")] = 128,
    seed: Annotated[int, typer.Option(help="random seed: the same data and seed give the same model")] = 0,
    validation: Annotated[float, typer.Option(help="share of examples for validation")] = 0.15,
    test: Annotated[float, typer.Option(help="share of examples for the final test")] = 0.15,
    class_weights: Annotated[bool, typer.Option("--class-weights", help="weight rare labels up in the loss")] = False,
    oversample: Annotated[bool, typer.Option("--oversample", help="repeat examples of rare labels")] = False,
    tune_threshold: Annotated[bool, typer.Option("--tune-threshold",
                                                 help="choose per-label decision thresholds on validation")] = False,
    lora_r: Annotated[int, typer.Option(help="LoRA rank")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Train a classifier, regressor or chat style on your examples; every run is recorded (`plait runs`)."""
    from pydantic import ValidationError

    from plait.adapt import TuneConfig
    from plait.adapt import tune as run_tune
    from plait.errors import InputError

    try:
        config = TuneConfig(task=task, method=method, base=base, epochs=epochs, learning_rate=learning_rate,  # type: ignore[arg-type]
                            batch_size=batch_size, max_length=max_length, seed=seed, validation=validation,
                            test=test, class_weights=class_weights, oversample=oversample,
                            tune_threshold=tune_threshold, lora_r=lora_r)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from exc
    result = run_tune(name, data, config, runtime=state(ctx).runtime(), say=_say)
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    print(f"{result.model}  ({config.method}, {result.trainable_params:,} of {result.total_params:,} parameters "
          f"trained, {result.duration_s:.0f} s, run {result.run_id})")
    metrics = result.metrics
    for key in ("accuracy", "macro_f1", "micro_f1", "ece", "rmse", "mae", "r2", "test_loss", "base_test_loss"):
        if isinstance(metrics.get(key), float):
            print(f"  {key:>14}: {metrics[key]:.4f}")
    for label, m in metrics.get("per_label", {}).items():
        print(f"  {label:>14}: precision {m['precision']:.3f}  recall {m['recall']:.3f}  f1 {m['f1']:.3f}  "
              f"(n={m['support']})")
    if "thresholds" in metrics:
        print("  thresholds (chosen on validation): "
              + ", ".join(f"{k} {v:.2f}" for k, v in metrics["thresholds"].items()))
    for path in result.plots:
        print(f"  plot: {path}")
    print(f"use it: plait classify --classifier {result.model} -t TEXT   ·   plait explain {result.model} TEXT"
          if config.task in ("classify", "multilabel") else
          f"use it: plait chat --model {result.model}" if config.task == "instruct" else
          f"use it: plait models info {result.model}")
