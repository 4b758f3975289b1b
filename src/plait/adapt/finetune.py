"""Training a text classifier or regressor: a head on frozen embeddings, a full fine-tune, or LoRA.

- ``head``: the catalog embedder (ONNX or PyTorch) embeds every text once; a linear layer is trained on
  those vectors. Seconds, and the result runs without PyTorch.
- ``finetune``: every weight of a small encoder (MiniLM, 22M parameters) plus a linear head.
- ``lora``: the encoder stays frozen; low-rank adapters on its attention (peft) and the head are
  trained: ~1% of the parameters, a few hundred kilobytes on disk.

All three share one loop (:func:`plait.adapt.training.fit`). Each method writes its files into a folder and
returns a :class:`~plait.adapt.training.Trained` that says how to load them; :func:`plait.adapt.tune.tune`
evaluates, records and registers the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.adapt.config import TuneConfig
from plait.adapt.datasets import Dataset, Split
from plait.adapt.tracking import RunTracker
from plait.adapt.training import Say, Targets, Trained, epoch_metrics, fit, make_targets, require_torch, seed_everything
from plait.errors import InputError, MissingDependency

if TYPE_CHECKING:

    from plait.runtime import Runtime

# Method: a head on frozen embeddings -----------------------------------------------------------------


def train_head(split: Split, config: TuneConfig, runtime: Runtime, folder: Path, tracker: RunTracker | None,
               say: Say) -> Trained:
    import numpy as np
    from safetensors.numpy import save_file

    from plait.models.base import Embedder

    th = require_torch("training a classification head")
    seed_everything(config.seed)
    embedder_name = config.base or runtime.settings.embed_model
    embedder = runtime.model(embedder_name, Embedder)
    # Embed each distinct text once (oversampling repeats texts).
    texts = list(dict.fromkeys(split.train.texts + split.validation.texts + split.test.texts))
    say(f"embedding {len(texts)} texts with {embedder_name}…")
    vectors = embedder.embed_many(texts, kind="document")
    row = {t: i for i, t in enumerate(texts)}

    def matrix(ds: Dataset) -> Any:
        return th.from_numpy(np.ascontiguousarray(vectors[[row[t] for t in ds.texts]]))

    x_train, x_val, x_test = matrix(split.train), matrix(split.validation), matrix(split.test)
    targets = make_targets(split.train, config)
    val_targets = make_targets(split.validation, config, mean=targets.mean, std=targets.std)
    labels = split.train.labels
    outputs = 1 if config.task == "regress" else len(labels)
    head = th.nn.Linear(vectors.shape[1], outputs)

    def validate() -> tuple[dict[str, float], tuple[float, float]]:
        with th.no_grad():
            out = head(x_val).numpy()
        return epoch_metrics(config.task, labels, out, split.validation, val_targets)

    # A (k × d) layer is too small to share between threads: more threads only add waiting.
    threads = th.get_num_threads()
    th.set_num_threads(1)
    try:
        epochs_run, best_epoch = fit(head, batch_loss=lambda idx: targets.loss(head(x_train[idx]), targets.values[idx]),
                                     n_train=len(x_train), validate=validate, config=config, tracker=tracker,
                                     say=say, trainable_only=False)
    finally:
        th.set_num_threads(threads)
    save_file({"weight": head.weight.detach().numpy().copy(), "bias": head.bias.detach().numpy().copy()},
              str(folder / "head.safetensors"))
    with th.no_grad():
        val_out, test_out = head(x_val).numpy(), head(x_test).numpy()
    n = sum(p.numel() for p in head.parameters())
    frozen = _embedder_parameters(embedder)
    return Trained(
        options={"kind": "head", "embedder": embedder_name, **_task_options(config, labels, targets)},
        base=embedder_name, trainable_params=n, total_params=n + frozen, epochs_run=epochs_run,
        best_epoch=best_epoch, validation_outputs=val_out, test_outputs=test_out)


def _ids(batch: Any) -> dict[str, Any]:
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def _embedder_parameters(embedder: Any) -> int:
    st = getattr(embedder, "st", None)
    if st is not None:
        return sum(p.numel() for p in st.parameters())
    return 0  # an ONNX or remote embedder: its size is not counted here


def _task_options(config: TuneConfig, labels: Sequence[str], targets: Targets) -> dict[str, Any]:
    if config.task == "regress":
        return {"task": "regress", "target_mean": targets.mean, "target_std": targets.std}
    return {"task": config.task, "labels": list(labels)}


# Methods: full fine-tuning and LoRA of an encoder ----------------------------------------------------


def train_encoder(split: Split, config: TuneConfig, runtime: Runtime, folder: Path, tracker: RunTracker | None,
                  say: Say) -> Trained:
    th = require_torch("fine-tuning")
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("fine-tuning", extra="adapt", package="transformers") from exc
    from plait.adapt.networks import EncoderNet, count_parameters, load_encoder, lora_encoder, probe_head, quiet_peft
    from plait.adapt.serving import EncoderScorer

    lora = config.method == "lora"
    quiet_peft()
    if lora:
        try:
            import peft  # noqa: F401
        except ImportError as exc:
            raise MissingDependency("LoRA", extra="adapt", package="peft") from exc
    th.set_num_threads(runtime.settings.threads)
    seed_everything(config.seed)
    base_name = config.base or "minilm"
    base_spec = runtime.catalog.get(base_name)
    if base_spec.backend not in ("sentence-transformers", "transformers"):
        raise InputError(f"'{base_name}' is not a PyTorch encoder (it is {base_spec.backend}); fine-tuning needs "
                         "one, e.g. --base minilm")
    path = base_spec.local_path(runtime.settings.models_dir)
    say(f"loading {base_name} from {path}…")
    encoder = load_encoder(path)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if lora:
        encoder = lora_encoder(encoder, r=config.lora_r, alpha=config.lora_alpha, dropout=config.lora_dropout)
    labels = split.train.labels
    outputs = 1 if config.task == "regress" else len(labels)
    net = EncoderNet(encoder, outputs)
    scorer = EncoderScorer(net, tokenizer, config.max_length, batch_size=max(config.batch_size, 16))
    targets = make_targets(split.train, config)
    val_targets = make_targets(split.validation, config, mean=targets.mean, std=targets.std)
    train_texts = split.train.texts

    def batch_loss(idx: list[int]) -> Any:
        batch = scorer.encode([train_texts[i] for i in idx])
        out = net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return targets.loss(out, targets.values[idx])

    def validate() -> tuple[dict[str, float], tuple[float, float]]:
        return epoch_metrics(config.task, labels, scorer(split.validation.texts), split.validation, val_targets)

    say("fitting the head on the pretrained features first…")
    with th.no_grad():
        net.eval()
        features = th.cat([net.pooled(**_ids(scorer.encode(train_texts[s:s + 32])))
                              for s in range(0, len(train_texts), 32)])
    probe_head(net, features, targets.values, targets.loss)
    trainable, total = count_parameters(net)
    say(f"training {trainable:,} of {total:,} parameters ({'LoRA' if lora else 'full fine-tune'})")
    epochs_run, best_epoch = fit(net, batch_loss=batch_loss, n_train=len(train_texts), validate=validate,
                                 config=config, tracker=tracker, say=say, trainable_only=lora)
    val_out, test_out = scorer(split.validation.texts), scorer(split.test.texts)
    tokenizer.save_pretrained(str(folder / "tokenizer"))
    net.save_head(folder / "head.safetensors")
    options: dict[str, Any] = {"outputs": outputs, "max_length": config.max_length, "base": base_name,
                               **_task_options(config, labels, targets)}
    if lora:
        encoder.save_pretrained(str(folder / "adapter"))  # the adapter only: the base stays where it is
        options["kind"] = "encoder-lora"
        options["lora"] = {"r": config.lora_r, "alpha": config.lora_alpha, "target_modules": ["query", "value"]}
    else:
        encoder.save_pretrained(str(folder / "encoder"))
        options["kind"] = "encoder"
    return Trained(options=options, base=base_name, trainable_params=trainable, total_params=total,
                   epochs_run=epochs_run, best_epoch=best_epoch, validation_outputs=val_out, test_outputs=test_out)
