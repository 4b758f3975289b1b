"""Knowledge distillation: a smaller student learns to give the answers of its teacher.

Classifiers: the student matches the teacher's softened label distribution (KL divergence at temperature
``T``, scaled by T², Hinton et al. 2015) and, for texts that carry a label, the label itself
(cross-entropy), weighted by ``alpha``. Texts need no labels: the teacher labels them, so any text from
the same domain teaches. Embedders: the student's sentence vector matches the teacher's (mean squared
error, as sentence-transformers' model distillation does).

The student usually starts as the teacher with layers dropped (:func:`plait.compress.prune.drop_layers`),
so it begins close to the teacher and training only has to repair what the missing layers did. The same
loop repairs a structurally pruned model, with the unpruned model as teacher.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from plait.errors import InputError

EpochDone = Callable[[int, float], None]  # (epoch, mean loss)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    lr: float = 1e-4
    batch_size: int = 16
    max_length: int = 256
    temperature: float = 2.0
    alpha: float = 0.7  # weight of matching the teacher; 1 - alpha for the gold labels
    seed: int = 0
    warmup: float = 0.1  # fraction of steps with a rising learning rate


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[Any, Any]:
    """(ids, mask) long tensors, padded to the batch's longest text."""
    import torch

    tokenizer.enable_truncation(max_length=max_length)
    encodings = tokenizer.encode_batch(list(texts))
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
    return ids, mask


def outputs(model: Any, ids: Any, mask: Any, kind: str) -> Any:
    """Logits (classifier) or mean-pooled sentence vectors (embedder), shape (batch, n)."""
    import torch

    result = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    if kind == "classifier":
        return result
    hidden = result.last_hidden_state
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def teacher_targets(teacher: Any, tokenizer: Any, texts: Sequence[str], kind: str, config: TrainConfig) -> Any:
    import torch

    teacher.eval()
    rows = []
    with torch.inference_mode():
        for start in range(0, len(texts), config.batch_size):
            ids, mask = encode(tokenizer, texts[start:start + config.batch_size], config.max_length)
            rows.append(outputs(teacher, ids, mask, kind).float())
    return torch.cat(rows)


def distill(teacher: Any | None, student: Any, tokenizer: Any, texts: Sequence[str], *, kind: str,
            labels: Sequence[int | None] | None = None, config: TrainConfig = TrainConfig(),
            on_epoch: EpochDone | None = None) -> list[float]:
    """Train ``student`` in place; returns the mean loss of each epoch.

    ``teacher=None`` is plain fine-tuning on ``labels`` (classifiers only). ``labels[i]`` is a label
    index or None for an unlabelled text.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual name

    if not texts:
        raise InputError("distillation needs texts to learn from")
    if labels is not None and len(labels) != len(texts):
        raise InputError("give one label (or none) per training text")
    if teacher is None and (kind != "classifier" or labels is None or all(y is None for y in labels)):
        raise InputError("training without a teacher needs labelled texts")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    targets = teacher_targets(teacher, tokenizer, texts, kind, config) if teacher is not None else None
    gold = torch.tensor([-100 if y is None else int(y) for y in (labels or [None] * len(texts))], dtype=torch.long)
    alpha = config.alpha if teacher is not None else 0.0
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=0.01)
    steps = config.epochs * math.ceil(len(texts) / config.batch_size)
    warm = max(1, int(config.warmup * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    T = config.temperature  # noqa: N806 - the usual name
    losses: list[float] = []
    student.train()
    try:
        for epoch in range(config.epochs):
            order = list(range(len(texts)))
            rng.shuffle(order)
            total, batches = 0.0, 0
            for start in range(0, len(order), config.batch_size):
                idx = order[start:start + config.batch_size]
                ids, mask = encode(tokenizer, [texts[i] for i in idx], config.max_length)
                out = outputs(student, ids, mask, kind)
                loss = out.new_zeros(())
                if targets is not None and kind == "embedder":
                    loss = F.mse_loss(out, targets[idx])
                elif kind == "classifier":
                    if targets is not None:
                        soft = F.kl_div(F.log_softmax(out / T, dim=-1), F.softmax(targets[idx] / T, dim=-1),
                                        reduction="batchmean")
                        loss = loss + alpha * soft * T * T
                    y = gold[idx]
                    if (y >= 0).any():
                        loss = loss + (1 - alpha) * F.cross_entropy(out, y, ignore_index=-100)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                total += float(loss.detach())
                batches += 1
            losses.append(total / max(batches, 1))
            if on_epoch:
                on_epoch(epoch + 1, losses[-1])
    finally:
        student.eval()
    return losses
