"""LoRA on a chat model for an instruction or style task (prompt → the answer the person wants).

The base chat model is the packaged SmolLM2 GGUF. transformers reads GGUF (dequantising it to float32,
which needs the ``gguf`` package); that conversion takes tens of seconds, so its result is kept once
under ``$PLAIT_HOME/models/.transformers/<base>/`` and later loads (training again, serving the tuned
model) read plain safetensors.

Training sees each example as the chat template would render it at inference time (the same system
prompt, the same turn markers) and learns only the answer: prompt tokens are masked out of the loss.
Prompts longer than ``max_length`` minus the answer are cut from the end, so the answer is always whole.
The tuned model is served through the transformers backend with the adapter merged in.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.adapt.config import TuneConfig
from plait.adapt.datasets import Dataset, Split
from plait.adapt.tracking import RunTracker
from plait.adapt.training import Say, Trained, fit, require_torch, seed_everything
from plait.errors import InputError, MissingDependency
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import torch

    from plait.runtime import Runtime

IGNORE = -100  # label value the loss skips
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def transformers_copy(base: ModelSpec, settings: Settings) -> Path:
    """A folder transformers loads quickly for ``base``: the model folder itself, or a kept conversion of a GGUF."""
    if base.backend == "transformers":
        return base.local_path(settings.models_dir)
    if base.backend != "llamacpp":
        raise InputError(f"'{base.name}' is a {base.backend} model; LoRA needs a GGUF or transformers chat model")
    folder = settings.models_dir / ".transformers" / base.name
    if (folder / "config.json").exists():
        return folder
    try:
        import gguf  # noqa: F401
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("tuning a GGUF chat model", extra="adapt", package="gguf and transformers") from exc
    from plait.models.hf import quiet_transformers

    quiet_transformers()
    gguf_path = base.local_path(settings.models_dir)
    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), **kwargs)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), **kwargs)
    # The weights are plain float32 once read; transformers still marks the model as GGUF-quantized and
    # refuses to save it, so clear that mark.
    setattr(model, "hf_quantizer", None)  # noqa: B010 - typed as a module attribute by torch
    setattr(model, "is_quantized", False)  # noqa: B010
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        model.save_pretrained(str(partial))
        tokenizer.save_pretrained(str(partial))
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(partial, folder)
        except OSError:  # another process finished the same conversion first
            if not (folder / "config.json").exists():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def base_generator_spec(base: ModelSpec, settings: Settings) -> ModelSpec:
    """A transformers catalog entry for the base chat model (what the tuned model is merged into)."""
    return ModelSpec(name=f"{base.name}-transformers", backend="transformers", capabilities=("chat", "complete"),
                     source=str(transformers_copy(base, settings)), description=f"{base.name} through transformers")


def encode_example(tokenizer: Any, prompt: str, response: str, max_length: int) -> tuple[list[int], list[int]]:
    """(input ids, labels) for one chat turn; labels are IGNORE over the prompt."""
    messages = [{"role": "user", "content": prompt}]
    head = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": response}], tokenize=False)
    if not full.startswith(head):  # a template that renders the prompt differently once answered
        raise InputError("this chat model's template cannot be split into prompt and answer for training")
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(head):], add_special_tokens=False)["input_ids"]
    room = max_length - len(answer_ids)
    if room < 16:
        raise InputError(f"an answer of {len(answer_ids)} tokens leaves no room for its prompt within "
                         f"--max-length {max_length}; raise --max-length or shorten the answers")
    if len(head_ids) > room:
        # Keep the template's end (the "assistant" turn marker): cut the prompt's text, not the markers.
        tail = tokenizer(tokenizer.apply_chat_template([{"role": "user", "content": "\x00"}],
                                                       add_generation_prompt=True, tokenize=False)
                         .split("\x00", 1)[1], add_special_tokens=False)["input_ids"]
        head_ids = head_ids[:room - len(tail)] + tail
    return head_ids + answer_ids, [IGNORE] * len(head_ids) + answer_ids


def _collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    torch = require_torch("training")
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (x, y) in enumerate(rows):
        ids[i, :len(x)] = torch.tensor(x)
        labels[i, :len(y)] = torch.tensor(y)
        mask[i, :len(x)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def mean_loss(model: Any, rows: Sequence[tuple[list[int], list[int]]], pad_id: int, batch_size: int = 8) -> float:
    """Mean per-token loss of the answers (what training minimises), without gradients."""
    torch = require_torch("training")
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            batch = _collate(rows[start:start + batch_size], pad_id)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            # Token t predicts token t+1.
            shift_logits, shift_labels = logits[:, :-1].float(), batch["labels"][:, 1:]
            loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                     shift_labels.reshape(-1), ignore_index=IGNORE, reduction="sum")
            total += float(loss)
            tokens += int((shift_labels != IGNORE).sum())
    return total / max(tokens, 1)


def train_chat(split: Split, config: TuneConfig, runtime: Runtime, folder: Path, tracker: RunTracker | None,
               say: Say) -> Trained:
    torch = require_torch("tuning a chat model")
    try:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("tuning a chat model", extra="adapt", package="peft and transformers") from exc
    from plait.adapt.networks import count_parameters, quiet_peft

    quiet_peft()

    torch.set_num_threads(runtime.settings.threads)
    seed_everything(config.seed)
    base_name = config.base or "smollm2"
    base = runtime.catalog.get(base_name)
    if "chat" not in base.capabilities:
        raise InputError(f"'{base_name}' is not a chat model; an instruct task tunes one, e.g. --base smollm2")
    say(f"loading {base_name} for training (a GGUF is converted once; this can take a minute)…")
    path = transformers_copy(base, runtime.settings)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def encode(ds: Dataset) -> list[tuple[list[int], list[int]]]:
        return [encode_example(tokenizer, e.text, e.response or "", config.max_length) for e in ds.examples]

    train_rows, val_rows, test_rows = encode(split.train), encode(split.validation), encode(split.test)
    base_val = mean_loss(model, val_rows, pad_id)
    base_test = mean_loss(model, test_rows, pad_id) if test_rows else float("nan")
    say(f"base model answer loss: validation {base_val:.4f}, test {base_test:.4f}")
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=LORA_TARGETS, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)  # type: ignore[assignment]
    if tracker is not None:
        tracker.log(0, "validation", {"loss": base_val})

    def batch_loss(idx: list[int]) -> Any:
        batch = _collate([train_rows[i] for i in idx], pad_id)
        return model(**batch).loss

    def validate() -> tuple[dict[str, float], tuple[float, float]]:
        loss = mean_loss(model, val_rows, pad_id)
        return {"loss": loss}, (-loss, 0.0)

    trainable, total = count_parameters(model)
    say(f"training {trainable:,} of {total:,} parameters (LoRA r={config.lora_r} on attention)")
    epochs_run, best_epoch = fit(model, batch_loss=batch_loss, n_train=len(train_rows), validate=validate,
                                 config=config, tracker=tracker, say=say, trainable_only=True)
    test_loss = mean_loss(model, test_rows, pad_id) if test_rows else float("nan")
    model.save_pretrained(str(folder / "adapter"))
    import numpy as np

    return Trained(
        options={"kind": "chat-lora", "task": "instruct", "base": base_name, "max_length": config.max_length,
                 "lora": {"r": config.lora_r, "alpha": config.lora_alpha, "target_modules": LORA_TARGETS}},
        base=base_name, trainable_params=trainable, total_params=total, epochs_run=epochs_run,
        best_epoch=best_epoch, validation_outputs=np.zeros((0, 0)), test_outputs=np.zeros((0, 0)),
        extra_metrics={"test_loss": test_loss, "base_test_loss": base_test, "base_validation_loss": base_val,
                       "validation_loss": mean_loss(model, val_rows, pad_id)})
