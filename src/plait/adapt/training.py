"""The training loop every `plait tune` method shares, and what a method hands back.

:func:`fit`: AdamW with warm-up and linear decay, gradient clipping, seeded shuffling, metrics on the
validation split after every epoch (logged to the run), early stopping on validation macro-F1 (ties broken by
validation loss; RMSE for regression), and the best epoch's weights kept. A method (:mod:`plait.adapt.finetune`
for encoders and heads, :mod:`plait.adapt.chat` for chat models) writes its files into a folder and returns a
:class:`Trained` that says how to load them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plait.adapt.config import TuneConfig
from plait.adapt.datasets import Dataset, class_weights
from plait.adapt.tracking import RunTracker
from plait.errors import MissingDependency

if TYPE_CHECKING:
    import numpy as np
    import torch

Say = Callable[[str], None]


@dataclass
class Trained:
    """What a method produced: its files (already in ``folder``) and how to load them."""

    options: dict[str, Any]  # the catalog entry's options: kind, task, labels, base…
    base: str
    trainable_params: int
    total_params: int
    epochs_run: int
    best_epoch: int
    validation_outputs: np.ndarray  # raw outputs (logits; standardised numbers for regression)
    test_outputs: np.ndarray
    extra_metrics: dict[str, float] = field(default_factory=dict)


def require_torch(feature: str) -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency(feature, extra="adapt", package="torch") from exc
    return torch


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    th = require_torch("training")
    random.seed(seed)
    np.random.seed(seed)
    th.manual_seed(seed)


# The shared loop -----------------------------------------------------------------------------------


@dataclass
class Targets:
    """Training targets and the loss for them, by task."""

    task: str
    values: torch.Tensor  # class indices (classify), 0/1 matrix (multilabel) or standardised floats
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    mean: float = 0.0  # regression: targets were (y - mean) / std
    std: float = 1.0


def make_targets(dataset: Dataset, config: TuneConfig, *, mean: float | None = None,
                 std: float | None = None) -> Targets:
    th = require_torch("training")
    nn = th.nn
    if config.task == "classify":
        weight = th.tensor(class_weights(dataset), dtype=th.float32) if config.class_weights else None
        return Targets("classify", th.tensor(dataset.label_index(), dtype=th.long),
                       nn.CrossEntropyLoss(weight=weight))
    if config.task == "multilabel":
        y = th.tensor(dataset.label_matrix())
        pos_weight = None
        if config.class_weights:
            pos = y.sum(dim=0).clamp(min=1.0)
            pos_weight = (len(y) - pos).clamp(min=1.0) / pos
        return Targets("multilabel", y, nn.BCEWithLogitsLoss(pos_weight=pos_weight))
    values = dataset.targets()
    mean = float(values.mean()) if mean is None else mean
    std = float(values.std()) or 1.0 if std is None else std
    return Targets("regress", th.tensor((values - mean) / std, dtype=th.float32).unsqueeze(1),
                   nn.MSELoss(), mean, std)


def epoch_metrics(task: str, labels: Sequence[str], outputs: np.ndarray, dataset: Dataset,
                  targets: Targets) -> tuple[dict[str, float], tuple[float, float]]:
    """Validation metrics of one epoch and the score early stopping maximises."""
    import numpy as np

    from plait.adapt import evaluate
    from plait.tasks.calibration import sigmoid, softmax

    th = require_torch("training")
    with th.no_grad():
        loss = float(targets.loss(th.from_numpy(outputs), targets.values))
    if task == "regress":
        pred = outputs[:, 0] * targets.std + targets.mean
        r = evaluate.regression_report(dataset.targets(), pred)
        return {"loss": loss, **r.scalars()}, (-r.rmse, -loss)
    if task == "multilabel":
        rep = evaluate.multilabel_report(labels, dataset.label_matrix(), sigmoid(outputs))
    else:
        rep = evaluate.classification_report(labels, np.asarray(dataset.label_index()), softmax(outputs))
    return {"loss": loss, "accuracy": rep.accuracy, "macro_f1": rep.macro_f1}, (rep.macro_f1, -loss)


def fit(net: torch.nn.Module, *, batch_loss: Callable[[list[int]], torch.Tensor], n_train: int,
        validate: Callable[[], tuple[dict[str, float], tuple[float, float]]], config: TuneConfig,
        tracker: RunTracker | None, say: Say, trainable_only: bool) -> tuple[int, int]:
    """Train ``net``; returns (epochs run, best epoch).

    ``batch_loss(indices)`` is the mean loss of those training examples; ``validate()`` returns the
    validation metrics and the score to maximise.
    """
    th = require_torch("training")
    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = th.optim.AdamW(params, lr=config.resolved_learning_rate, weight_decay=config.weight_decay)
    epochs = config.resolved_epochs
    steps = math.ceil(n_train / config.batch_size) * epochs
    warmup = max(1, int(0.06 * steps))

    def schedule(step: int) -> float:
        return min(1.0, (step + 1) / warmup) * max(0.0, (steps - step) / steps)

    scheduler = th.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    generator = th.Generator().manual_seed(config.seed)
    best: tuple[float, float] | None = None
    best_state: dict[str, Any] = {}
    best_epoch, stale, epoch = 0, 0, 0

    def snapshot() -> dict[str, Any]:
        # Only what training changes: for LoRA a few hundred thousand numbers, not the whole encoder.
        names = {n for n, p in net.named_parameters() if p.requires_grad} if trainable_only else None
        return {k: v.detach().clone() for k, v in net.state_dict().items() if names is None or k in names}

    for epoch in range(1, epochs + 1):
        net.train()
        order = th.randperm(n_train, generator=generator).tolist()
        losses = []
        for start in range(0, n_train, config.batch_size):
            idx = order[start:start + config.batch_size]
            loss = batch_loss(idx)
            loss.backward()
            th.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()) * len(idx))
        net.eval()
        train_loss = sum(losses) / n_train
        val_metrics, score = validate()
        if tracker is not None:
            tracker.log(epoch, "train", {"loss": train_loss, "learning_rate": scheduler.get_last_lr()[0]})
            tracker.log(epoch, "validation", val_metrics)
        if epochs <= 10 or epoch % (epochs // 10) == 0 or epoch == 1:  # about ten progress lines a run
            shown = ", ".join(f"{k} {v:.4f}" for k, v in val_metrics.items())
            say(f"epoch {epoch}/{epochs}: train loss {train_loss:.4f}; validation {shown}")
        if best is None or score > best:
            best, best_epoch, stale = score, epoch, 0
            best_state = snapshot()
        else:
            stale += 1
            if stale >= config.resolved_patience:
                say(f"stopping early: no improvement for {stale} epoch(s); keeping epoch {best_epoch}")
                break
    net.load_state_dict(best_state, strict=False)
    net.eval()
    return epoch, best_epoch
