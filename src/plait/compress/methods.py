"""The compression methods, by name, each with the kinds of model it applies to.

A method fills an empty folder with a new model's files and says how to load them (backend, options).
It never touches the catalog: :mod:`plait.compress.variants` registers the result once it is complete.
Methods chain with ``+`` (``distill+onnx-int8``): each step's output is the next step's input.

=================  ==========================  ===================================================
method             applies to                  result
=================  ==========================  ===================================================
torch-int8         PyTorch classifier/embedder PyTorch dynamic int8 (Linear layers)
onnx               PyTorch classifier/embedder ONNX float32 (ONNX Runtime, no PyTorch needed)
onnx-int8          PyTorch or ONNX fp32        ONNX Runtime dynamic int8, per-channel weights
prune              PyTorch classifier/embedder magnitude pruning (``amount`` of each layer's weights)
prune-heads        PyTorch classifier/embedder ``amount`` of attention heads removed per layer
prune-neurons      PyTorch classifier/embedder ``amount`` of feed-forward neurons removed per layer
drop-layers        PyTorch classifier/embedder ``layers`` layers kept (default half)
distill            PyTorch classifier/embedder a ``layers``-layer student trained on its teacher
gguf-<type>        GGUF chat model             requantized by llama.cpp (q4_0, q5_k_m, q8_0…)
=================  ==========================  ===================================================

``prune-heads``, ``prune-neurons`` and ``drop-layers`` also repair the model by distillation from the
original when training texts are given (``--train``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from plait.compress.data import TrainSet
from plait.compress.source import Family, Kind, Source
from plait.errors import CapabilityError, CatalogError, InputError, MissingDependency
from plait.settings import Settings

if TYPE_CHECKING:
    from plait.models.loading import Models

FOLDER = "{folder}"  # stands for the variant's final folder in options (filled in at registration)
Log = Callable[[str], None]


class MethodParams(BaseModel):
    """Knobs of the methods; each method reads the ones it needs."""

    model_config = ConfigDict(extra="forbid")

    amount: float = Field(default=0.3, gt=0, lt=1, description="fraction pruned (prune, prune-heads, prune-neurons)")
    layers: int | None = Field(default=None, ge=1, description="layers kept (drop-layers, distill); default half")
    epochs: int = Field(default=4, ge=1, le=200, description="training epochs (distill, repair)")
    lr: float = Field(default=1e-4, gt=0, lt=1)
    batch_size: int = Field(default=16, ge=1, le=1024)
    max_length: int | None = Field(default=None, ge=8, le=8192, description="tokens per training text")
    temperature: float = Field(default=2.0, gt=0)
    alpha: float = Field(default=0.7, ge=0, le=1, description="weight of the teacher vs the gold labels")
    seed: int = 0


@dataclass
class BuildContext:
    source: Source
    settings: Settings
    out: Path  # an empty folder for the new model's files
    params: MethodParams
    labels: tuple[str, ...] = ()  # a classifier's labels, in logit order
    train: TrainSet | None = None
    log: Log = lambda message: None
    models: Models | None = None  # what the source is built on (a tuned model's base), from the pool


@dataclass(frozen=True)
class Built:
    backend: str
    file: str  # the model inside the folder: "." for the folder itself, else a file name
    options: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)  # what the method did, for provenance


Builder = Callable[[BuildContext], Built]


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    kinds: frozenset[Kind]
    families: frozenset[str]
    build: Builder
    produces: Family = "torch"  # the kind of files made, which decides what can follow in a chain
    needs_train: bool = False  # cannot run without training texts (embedders have a default)
    uses_train: bool = False  # repairs itself with training texts when given

    def applies(self, source: Source) -> bool:
        return source.kind in self.kinds and source.family in self.families

    def knobs(self, trained: bool) -> tuple[str, ...]:
        """The parameters this method reads (recorded in the variant's provenance)."""
        own = {"prune": ("amount",), "prune-heads": ("amount",), "prune-neurons": ("amount",),
               "drop-layers": ("layers",), "distill": ("layers",)}.get(self.name, ())
        return own + (TRAINING_KNOBS if trained else ())


TRAINING_KNOBS = ("epochs", "lr", "batch_size", "max_length", "temperature", "alpha", "seed")
METHODS: dict[str, Method] = {}
ENCODERS: frozenset[Kind] = frozenset({"classifier", "embedder"})


def method(name: str, summary: str, *, kinds: frozenset[Kind] = ENCODERS,
           families: frozenset[str] = frozenset({"torch"}), produces: Family = "torch", needs_train: bool = False,
           uses_train: bool = False) -> Callable[[Builder], Builder]:
    def register(fn: Builder) -> Builder:
        if name in METHODS:
            raise CatalogError(f"compression method '{name}' is registered twice")
        METHODS[name] = Method(name, summary, kinds, families, fn, produces, needs_train, uses_train)
        return fn
    return register


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise InputError(f"unknown compression method '{name}'; known: {', '.join(METHODS)}")
    return METHODS[name]


def applicable(source: Source) -> list[Method]:
    return [m for m in METHODS.values() if m.applies(source)]


def check_applies(m: Method, source: Source) -> None:
    if not m.applies(source):
        fits = ", ".join(x.name for x in applicable(source)) or "none"
        raise CapabilityError(f"method '{m.name}' does not apply to '{source.spec.name}', {source.describe()}; "
                              f"methods that do: {fits}")


# PyTorch encoders -----------------------------------------------------------------------------------


def _encoder_result(ctx: BuildContext, model: Any, *, int8: bool = False, **details: Any) -> Built:
    from plait.models.encoder import save_module

    save_module(model, ctx.out, tokenizer=ctx.source.tokenizer(ctx.settings), labels=ctx.labels, int8=int8)
    options = ctx.source.encoder_options(ctx.settings)
    if ctx.labels:
        options["labels"] = list(ctx.labels)
    return Built("encoder", ".", options, details)


def _repair(ctx: BuildContext, model: Any, *, required: bool = False) -> dict[str, Any]:
    """Distil the original into ``model`` when training texts are given; returns what was done."""
    if ctx.train is None:
        if required:
            raise InputError("this method needs training texts: give --train DATA")
        return {}
    from plait.compress.distill import TrainConfig, distill
    from plait.models.onnx import open_tokenizer

    p = ctx.params
    max_length = p.max_length or int(ctx.source.encoder_options(ctx.settings).get("max_length", 256))
    config = TrainConfig(epochs=p.epochs, lr=p.lr, batch_size=p.batch_size, max_length=max_length,
                         temperature=p.temperature, alpha=p.alpha, seed=p.seed)
    teacher = ctx.source.torch_module(ctx.settings, ctx.models)
    tokenizer = open_tokenizer(str(ctx.source.tokenizer(ctx.settings)), max_length)
    ctx.log(f"training on {len(ctx.train.texts)} texts from {ctx.train.source or 'the training data'} "
            f"for {p.epochs} epoch(s)…")
    losses = distill(teacher, model, tokenizer, ctx.train.texts, kind=ctx.source.kind, labels=ctx.train.labels,
                     config=config, on_epoch=lambda e, loss: ctx.log(f"  epoch {e}: loss {loss:.4f}"))
    return {"trained_on": ctx.train.source, "train_texts": len(ctx.train.texts), "epochs": p.epochs,
            "losses": [round(x, 5) for x in losses], "teacher": ctx.source.spec.name}


@method("torch-int8", "PyTorch dynamic int8: Linear weights as int8, activations quantized on the fly",
        produces="torch-int8")
def _torch_int8(ctx: BuildContext) -> Built:
    from plait.compress.quantize import quantize_torch_dynamic

    built = _encoder_result(ctx, quantize_torch_dynamic(ctx.source.torch_module(ctx.settings, ctx.models)), int8=True)
    built.options["quantized"] = "int8"
    return built


def _onnx(ctx: BuildContext, *, int8: bool) -> Built:
    from plait.compress.export import export_module
    from plait.compress.quantize import quantize_dynamic_int8

    target = ctx.out / "model.onnx"
    if ctx.source.family == "onnx":
        _check_not_quantized(ctx.source.spec.local_path(ctx.settings.models_dir))
        quantize_dynamic_int8(ctx.source.spec.local_path(ctx.settings.models_dir), target)
        options = dict(ctx.source.spec.options)
        options.pop("recipe", None)
        if ctx.source.spec.option_path("tokenizer") is None:  # it sat beside the parent's graph
            shutil.copyfile(ctx.source.tokenizer(ctx.settings), ctx.out / "tokenizer.json")
        return Built(ctx.source.spec.backend, "model.onnx", options)
    module = ctx.source.torch_module(ctx.settings, ctx.models, attn="eager")  # eager attention exports a faster graph
    output = "logits" if ctx.source.kind == "classifier" else "last_hidden_state"
    if int8:
        fp32 = export_module(module, ctx.out / ".fp32.onnx", output=output)
        quantize_dynamic_int8(fp32, target)
        fp32.unlink()
    else:
        export_module(module, target, output=output)
    shutil.copyfile(ctx.source.tokenizer(ctx.settings), ctx.out / "tokenizer.json")
    options = ctx.source.encoder_options(ctx.settings)
    if ctx.source.kind == "classifier":
        options["labels"] = list(ctx.labels)
        return Built("onnx-classifier", "model.onnx", options)
    options.pop("task", None)
    options["tokenizer"] = f"{FOLDER}/tokenizer.json"
    options.setdefault("batch_size", 8)
    return Built("onnx", "model.onnx", options)


def _check_not_quantized(path: Path) -> None:
    try:
        import onnx
    except ImportError as exc:
        raise MissingDependency("ONNX quantization", extra="onnx", package="onnx") from exc
    ops = {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}
    if ops & {"DynamicQuantizeLinear", "MatMulInteger", "DequantizeLinear", "QLinearMatMul", "DynamicQuantizeMatMul"}:
        raise CapabilityError(f"{path.name} is already quantized; quantize its float32 original instead")


@method("onnx", "ONNX export (float32) for ONNX Runtime: no PyTorch needed to run it", produces="onnx")
def _onnx_fp32(ctx: BuildContext) -> Built:
    return _onnx(ctx, int8=False)


@method("onnx-int8", "ONNX export and ONNX Runtime dynamic int8 with per-channel weights",
        families=frozenset({"torch", "onnx"}), produces="onnx")
def _onnx_int8(ctx: BuildContext) -> Built:
    return _onnx(ctx, int8=True)


@method("prune", "magnitude pruning: the smallest weights of each layer set to zero")
def _magnitude(ctx: BuildContext) -> Built:
    from plait.compress.prune import magnitude_prune

    model = ctx.source.torch_module(ctx.settings, ctx.models)
    sparsity = magnitude_prune(model, ctx.params.amount)
    return _encoder_result(ctx, model, amount=ctx.params.amount, sparsity=round(sparsity, 4))


@method("prune-heads", "structured pruning: the least important attention heads removed", uses_train=True)
def _heads(ctx: BuildContext) -> Built:
    from plait.compress.prune import prune_heads

    model = ctx.source.torch_module(ctx.settings, ctx.models)
    kept = prune_heads(model, ctx.params.amount)
    return _encoder_result(ctx, model, amount=ctx.params.amount, heads_kept=kept, **_repair(ctx, model))


@method("prune-neurons", "structured pruning: the least important feed-forward neurons removed", uses_train=True)
def _neurons(ctx: BuildContext) -> Built:
    from plait.compress.prune import prune_neurons

    model = ctx.source.torch_module(ctx.settings, ctx.models)
    kept = prune_neurons(model, ctx.params.amount)
    return _encoder_result(ctx, model, amount=ctx.params.amount, neurons_kept=kept, **_repair(ctx, model))


def _keep_layers(ctx: BuildContext, model: Any) -> list[int]:
    from plait.compress.prune import drop_layers, layers

    n = len(layers(model))
    return drop_layers(model, ctx.params.layers or max(1, n // 2))


@method("drop-layers", "layer dropping: a shallower copy keeping layers spread from first to last",
        uses_train=True)
def _drop(ctx: BuildContext) -> Built:
    model = ctx.source.torch_module(ctx.settings, ctx.models)
    kept = _keep_layers(ctx, model)
    return _encoder_result(ctx, model, layers_kept=kept, **_repair(ctx, model))


@method("distill", "knowledge distillation into a shallower student started from the teacher's layers",
        needs_train=True)
def _distill(ctx: BuildContext) -> Built:
    student = ctx.source.torch_module(ctx.settings, ctx.models)  # a fresh copy: the teacher is loaded on its own
    kept = _keep_layers(ctx, student)
    ctx.log(f"student: layers {kept} of the teacher")
    return _encoder_result(ctx, student, layers_kept=kept, **_repair(ctx, student, required=True))


# GGUF chat models ------------------------------------------------------------------------------------

GGUF_TYPES = ("q2_k", "q3_k_m", "q4_0", "q4_1", "q4_k_m", "q5_0", "q5_1", "q5_k_m", "q6_k", "q8_0", "iq4_nl", "f16")


def _gguf(ftype: str) -> Builder:
    def build(ctx: BuildContext) -> Built:
        from plait.compress.gguf import requantize

        src = ctx.source.spec.local_path(ctx.settings.models_dir)
        details = requantize(src, ctx.out / "model.gguf", ftype, threads=ctx.settings.threads)
        options = {k: v for k, v in ctx.source.spec.options.items() if k in ("n_ctx", "chat_format")}
        return Built("llamacpp", "model.gguf", options, details)
    return build


for _type in GGUF_TYPES:
    method(f"gguf-{_type}", f"llama.cpp requantization to {_type.upper()}", kinds=frozenset({"chat"}),
           families=frozenset({"gguf"}), produces="gguf")(_gguf(_type))


def resolve_chain(spec: str) -> list[Method]:
    """``distill+onnx-int8`` → the methods in order."""
    names = [part.strip() for part in spec.split("+")]
    if not spec.strip() or any(not n for n in names):
        raise InputError(f"'{spec}' is not a method; give one (e.g. onnx-int8) or several joined by '+'")
    return [get_method(n) for n in names]
