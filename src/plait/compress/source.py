"""What a model to compress is: its kind (classifier, embedder, chat model), its file family (a PyTorch
encoder, an ONNX graph, a GGUF file), and how to get its PyTorch module, tokenizer and options."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from plait.errors import CapabilityError, CatalogError
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    from plait.models.loading import Models

Kind = Literal["classifier", "embedder", "chat"]
Family = Literal["torch", "torch-int8", "onnx", "gguf", "other"]

# Backends whose files are a transformers encoder folder plait can load as a PyTorch module.
TORCH_BACKENDS = {"sentence-transformers", "encoder"}
# What `plait tune` makes (backend "adapted"): a fine-tuned or LoRA encoder with a head is a PyTorch
# classifier like any other; a head over a catalog embedder is not (compress its embedder instead).
ADAPTED_ENCODERS = {"encoder", "encoder-lora"}
# Options a derived model keeps from its parent.
KEPT_OPTIONS = ("task", "pooling", "max_length", "labels", "thresholds", "multi_label", "prefixes", "batch_size")
KIND_NAMES = {"classifier": "a text classifier", "embedder": "an embedding model", "chat": "a chat model"}


@dataclass(frozen=True)
class Source:
    spec: ModelSpec
    kind: Kind
    family: Family

    @property
    def task(self) -> str:
        """The encoder task of a PyTorch/ONNX model: ``classify`` or ``embed``."""
        return "classify" if self.kind == "classifier" else "embed"

    def describe(self) -> str:
        family = {"torch": "PyTorch", "torch-int8": "PyTorch int8", "onnx": "ONNX", "gguf": "GGUF (llama.cpp)",
                  "other": f"backend {self.spec.backend}"}
        return f"{KIND_NAMES[self.kind]} ({family[self.family]})"

    def folder(self, settings: Settings) -> Path:
        path = self.spec.local_path(settings.models_dir)
        return path if path.is_dir() else path.parent

    def tokenizer(self, settings: Settings) -> Path:
        if self.spec.backend == "adapted":
            return self.folder(settings) / "tokenizer" / "tokenizer.json"
        return self.spec.option_path("tokenizer") or self.folder(settings) / "tokenizer.json"

    def labels(self, settings: Settings) -> tuple[str, ...]:
        """A classifier's labels in logit order (the entry's option, else its config's id2label)."""
        if self.kind != "classifier":
            return ()
        if self.spec.options.get("labels"):
            return tuple(str(x) for x in self.spec.options["labels"])
        config = self.folder(settings) / "config.json"
        id2label = json.loads(config.read_text()).get("id2label", {}) if config.exists() else {}
        if not id2label:
            raise CatalogError(f"classifier '{self.spec.name}' does not say what its labels are")
        return tuple(str(id2label[k]) for k in sorted(id2label, key=int))

    def encoder_options(self, settings: Settings) -> dict[str, Any]:
        """Options a derived encoder keeps: pooling, truncation, labels, thresholds."""
        from plait.models.encoder import sentence_options

        if self.spec.backend == "sentence-transformers":
            options = sentence_options(self.folder(settings))
        else:
            options = {k: v for k, v in self.spec.options.items() if k in KEPT_OPTIONS}
        if self.spec.backend == "adapted":
            options.setdefault("max_length", 128)  # what plait tune's models truncate at by default
        options.setdefault("task", self.task)
        return options

    def torch_module(self, settings: Settings, models: Models | None = None, *, attn: str = "sdpa") -> Any:
        """A fresh float32 PyTorch module of this model (an int8 model cannot be compressed further)."""
        from plait.models.encoder import INT8_WEIGHTS, build_module, torch_modules

        torch, _ = torch_modules()
        torch.set_num_threads(settings.threads)
        folder = self.folder(settings)
        if self.family != "torch" or (folder / INT8_WEIGHTS).exists():
            raise CapabilityError(f"'{self.spec.name}' is {self.describe()}, not a float32 PyTorch model; "
                                  "compress its float32 original instead")
        if self.spec.backend == "adapted":
            from plait.models.loading import load_model

            net = load_model(self.spec, settings, models=models).scorer.net  # type: ignore[attr-defined]
            net.encoder.set_attn_implementation(attn)
            return net.eval()
        return build_module(folder, self.task, attn=attn)


def kind_of(spec: ModelSpec) -> Kind:
    caps = set(spec.capabilities)
    if "classify" in caps:
        return "classifier"
    if "embed" in caps:
        return "embedder"
    if caps & {"chat", "complete"}:
        return "chat"
    raise CapabilityError(f"'{spec.name}' ({', '.join(spec.capabilities)}) is not a text classifier, embedding "
                          "model or chat model, which are what plait can compress")


def family_of(spec: ModelSpec) -> Family:
    if spec.backend in TORCH_BACKENDS:
        return "torch-int8" if spec.options.get("quantized") == "int8" else "torch"
    if spec.backend == "adapted" and spec.options.get("kind") in ADAPTED_ENCODERS:
        return "torch"
    if spec.backend in ("onnx", "onnx-classifier"):
        return "onnx"
    if spec.backend == "llamacpp":
        return "gguf"
    return "other"


def source_of(spec: ModelSpec) -> Source:
    return Source(spec, kind_of(spec), family_of(spec))
