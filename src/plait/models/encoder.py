"""PyTorch transformer encoders in plait's own folder format: embedders and text classifiers, whole,
pruned, layer-dropped or int8.

A folder holds ``config.json`` (transformers), ``tokenizer.json``, and the weights: ``model.safetensors``
(float32) or ``model.int8.pt`` (a state dict of ``torch.ao.quantization.quantize_dynamic`` Linear layers).
An embedder is the bare encoder, mean-pooled; a classifier is the encoder, mean pooling and a linear head
(:class:`plait.adapt.networks.EncoderNet`, what ``plait tune`` trains; keys ``encoder.*`` and ``head.*``).
``shapes.json`` lists every Linear layer's (out, in) features: the model is built from the config, layers
whose shape differs are resized, then the weights load strictly, so a model with fewer heads or
feed-forward neurons in some layers needs no special config. ``plait.compress`` writes these folders.

Options of the catalog entry:
  task        ``embed``, ``classify`` (softmax over labels) or ``multilabel`` (a sigmoid per label)
  labels      the classifier's labels, in logit order (default: the config's ``id2label``)
  thresholds  per-label decision thresholds, as ``plait tune`` sets them (optional)
  pooling     ``mean`` (default) or ``cls`` (embedders)
  max_length  truncation in tokens (default 256)
  batch_size  texts per forward pass (default 16)
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.adapt.serving import Scorer, TunedClassifier
from plait.errors import CatalogError, MissingDependency, ModelFileError
from plait.models.base import Embedder, EmbedKind
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np

FP32_WEIGHTS = "model.safetensors"
INT8_WEIGHTS = "model.int8.pt"
SHAPES = "shapes.json"
TOKENIZER = "tokenizer.json"


def torch_modules() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingDependency("PyTorch encoder models", extra="hf", package="torch, transformers") from exc
    return torch, transformers


def build_module(folder: Path, task: str, *, attn: str = "sdpa") -> Any:
    """The model of ``folder`` as a PyTorch module in eval mode.

    ``task="embed"``: the bare encoder (output ``last_hidden_state``). ``task="classify"``: the encoder,
    mean pooling and a linear head (:class:`plait.adapt.networks.EncoderNet`, what ``plait tune``
    trains), with as many outputs as the config's ``num_labels``.
    """
    torch, transformers = torch_modules()
    from plait.models.hf import quiet_transformers

    quiet_transformers()
    try:
        config = transformers.AutoConfig.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise ModelFileError(folder, f"has no usable config.json ({exc})", "rebuild the model") from exc
    model = transformers.AutoModel.from_config(config, attn_implementation=attn)
    if task == "classify":
        from plait.adapt.networks import EncoderNet

        model = EncoderNet(model, int(config.num_labels))
    shapes_file = folder / SHAPES
    if shapes_file.exists():
        resize_linears(model, {k: tuple(v) for k, v in json.loads(shapes_file.read_text()).items()})
    int8 = folder / INT8_WEIGHTS
    if int8.exists():
        from plait.compress.quantize import quantize_torch_dynamic

        model = quantize_torch_dynamic(model)
        # A quantized state dict holds packed parameters, which only torch's own format stores.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantized tensors announce their move to torchao
            state = torch.load(str(int8), map_location="cpu", weights_only=True)
    elif (folder / FP32_WEIGHTS).exists():
        from safetensors.torch import load_file

        state = load_file(str(folder / FP32_WEIGHTS))
    else:
        raise ModelFileError(folder, f"has neither {FP32_WEIGHTS} nor {INT8_WEIGHTS}", "rebuild the model")
    load_weights(model, state, folder)
    return model.eval()


def load_weights(model: Any, state: dict[str, Any], where: Path) -> None:
    # Older checkpoints also store the position-id buffer, which newer transformers does not persist.
    from collections import OrderedDict

    expected = set(model.state_dict())
    kept = OrderedDict((k, v) for k, v in state.items() if k in expected or not k.endswith("position_ids"))
    # Module versions: a quantized Linear reads its packed weights by the version it was saved with.
    kept._metadata = getattr(state, "_metadata", None)  # type: ignore[attr-defined]
    try:
        model.load_state_dict(kept, strict=True)
    except RuntimeError as exc:
        raise ModelFileError(where, f"has weights that do not fit its config ({str(exc)[:300]})",
                             "rebuild the model") from exc


def encoder_config(model: Any) -> Any:
    """The transformers config of an encoder or of an encoder with a head."""
    return model.encoder.config if hasattr(model, "head") else model.config


def save_module(model: Any, folder: Path, *, tokenizer: Path, labels: Sequence[str] = (), int8: bool = False) -> None:
    """Write ``model`` as an encoder folder (see the module docstring) that :func:`build_module` reads back."""
    torch, _ = torch_modules()
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    config = encoder_config(model)
    if labels:
        config.num_labels = len(labels)
        config.id2label = dict(enumerate(labels))
        config.label2id = {label: i for i, label in enumerate(labels)}
    config.save_pretrained(str(folder))
    shutil.copyfile(tokenizer, folder / TOKENIZER)
    (folder / SHAPES).write_text(json.dumps(linear_shapes(model), indent=1) + "\n")
    if int8:
        torch.save(model.state_dict(), str(folder / INT8_WEIGHTS))
    else:
        from safetensors.torch import save_file

        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / FP32_WEIGHTS))


def linear_shapes(model: Any) -> dict[str, tuple[int, int]]:
    """(out, in) features of every Linear layer, by module name."""
    # Float and dynamically quantized Linear layers both carry in_features/out_features.
    return {name: (int(m.out_features), int(m.in_features)) for name, m in model.named_modules()
            if hasattr(m, "in_features") and hasattr(m, "out_features") and "Linear" in type(m).__name__}


def resize_linears(model: Any, shapes: dict[str, tuple[int, int]]) -> None:
    """Replace each Linear whose recorded shape differs by an uninitialised one of that shape."""
    torch, _ = torch_modules()
    for name, (out_features, in_features) in shapes.items():
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, attr)
        if (old.out_features, old.in_features) != (out_features, in_features):
            setattr(parent, attr, torch.nn.Linear(in_features, out_features, bias=old.bias is not None))


def sentence_options(folder: Path) -> dict[str, Any]:
    """Pooling and truncation of a sentence-transformers folder, as encoder options."""
    options: dict[str, Any] = {"task": "embed", "pooling": "mean", "max_length": 256}
    st_config = folder / "sentence_bert_config.json"
    if st_config.exists():
        options["max_length"] = int(json.loads(st_config.read_text()).get("max_seq_length", 256))
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.exists():
        modes = json.loads(pooling.read_text())
        if modes.get("pooling_mode_cls_token"):
            options["pooling"] = "cls"
    return options


def batched(texts: Sequence[str], size: int, run: Callable[[list[str]], np.ndarray],
            progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Run ``run`` over batches of similar length (less padding) and put the rows back in input order."""
    import numpy as np

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out: np.ndarray | None = None
    for start in range(0, len(order), size):
        idx = order[start:start + size]
        rows = run([texts[i] for i in idx])
        if out is None:
            out = np.zeros((len(texts), rows.shape[1]), dtype=np.float32)
        out[idx] = rows
        if progress:
            progress(len(idx))
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


class _Encoder:
    """What the embedder and the classifier share: the module, the tokenizer and one forward pass."""

    def __init__(self, spec: ModelSpec, settings: Settings, task: str) -> None:
        torch, _ = torch_modules()
        from plait.models.onnx import open_tokenizer

        torch.set_num_threads(settings.threads)
        folder = spec.local_path(settings.models_dir)
        tokenizer = spec.option_path("tokenizer") or folder / TOKENIZER
        if not tokenizer.exists():
            raise ModelFileError(folder, f"has no {TOKENIZER}", "rebuild the model")
        self.spec = spec
        self.module = build_module(folder, task)
        self.tokenizer = open_tokenizer(str(tokenizer), int(spec.options.get("max_length", 256)))
        self.batch_size = int(spec.options.get("batch_size", 16))

    def forward(self, texts: list[str]) -> tuple[Any, Any]:
        """(model output, attention mask) for one batch."""
        torch, _ = torch_modules()
        encodings = self.tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        with torch.inference_mode():
            return self.module(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)), mask


class EncoderEmbedder(Embedder):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        self.encoder = _Encoder(spec, settings, "embed")
        self.spec = spec
        self.batch_size = self.encoder.batch_size
        self.pooling = str(spec.options.get("pooling", "mean"))
        self.prefixes = spec.options.get("prefixes", {})
        self.dimensions = int(self.encoder.module.config.hidden_size)

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        prefix = self.prefixes.get(kind, "")
        output, mask = self.encoder.forward([prefix + t for t in texts])
        hidden = output.last_hidden_state  # (batch, tokens, dim)
        if self.pooling == "cls":
            return hidden[:, 0].float().numpy()
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return ((hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)).float().numpy()


def classifier_labels(spec: ModelSpec, config: Any) -> tuple[str, ...]:
    labels = spec.options.get("labels")
    if labels:
        return tuple(str(x) for x in labels)
    id2label = getattr(config, "id2label", None) or {}
    return tuple(str(id2label[i]) for i in sorted(id2label))


class EncoderScorer(Scorer):
    """Texts → logits of an encoder with a head, in length-sorted batches."""

    def __init__(self, encoder: _Encoder) -> None:
        self.encoder = encoder

    def __call__(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        def run(batch: list[str]) -> np.ndarray:
            logits, _ = self.encoder.forward(batch)  # EncoderNet returns (batch, labels) logits
            return logits.float().numpy()

        return batched(list(texts), self.encoder.batch_size, run, progress)


def tuned_classifier(spec: ModelSpec, scorer: Scorer, labels: Sequence[str]) -> TunedClassifier:
    """A classifier that decides as ``plait tune``'s do (per-label thresholds tuned on validation, if any)."""
    return TunedClassifier(spec, scorer, labels, multi_label=is_multi_label(spec),
                           label_thresholds=spec.options.get("thresholds"))


def is_multi_label(spec: ModelSpec) -> bool:
    return spec.options.get("task") == "multilabel" or bool(spec.options.get("multi_label"))


def load(spec: ModelSpec, settings: Settings) -> Embedder | TunedClassifier:
    task = str(spec.options.get("task", "classify" if "classify" in spec.capabilities else "embed"))
    if task == "embed":
        return EncoderEmbedder(spec, settings)
    encoder = _Encoder(spec, settings, "classify")
    labels = classifier_labels(spec, encoder.module.encoder.config)
    if len(labels) != encoder.module.head.out_features:
        raise CatalogError(f"model '{spec.name}' lists {len(labels)} labels but its head has "
                           f"{encoder.module.head.out_features} outputs; rebuild it")
    return tuned_classifier(spec, EncoderScorer(encoder), labels)
