"""Loading what ``plait tune`` made, as ordinary plait models (the ``adapted`` backend).

A tuned entry's ``options.kind`` says what its folder holds:

- ``head``: a linear head (``head.safetensors``) over a catalog embedder's frozen embeddings;
- ``encoder``: a fine-tuned encoder (``encoder/``) and its head;
- ``encoder-lora``: a LoRA adapter (``adapter/``) for a base encoder, merged into it on load, and a head;
- ``chat-lora``: a LoRA adapter for a base chat model, merged into it on load and served through
  transformers like any other chat model.

Classification models are :class:`plait.tasks.classifiers.Classifier` objects, so everything that
classifies (the ``classify`` task, the server, workflows, ``plait explain``) uses them by name;
regression models are :class:`TextRegressor` objects.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import InputError, MissingDependency, ModelFileError
from plait.models.base import Embedder, Model
from plait.models.spec import ModelSpec
from plait.settings import Settings
from plait.tasks.classifiers import Classification, Classifier, LabelScore, check_texts

if TYPE_CHECKING:
    import numpy as np

    from plait.models.loading import Models

Progress = Callable[[int], None]
HEAD_FILE = "head.safetensors"


class Scorer:
    """Texts → raw outputs (logits, or a standardised number), shape (n, outputs)."""

    @abstractmethod
    def __call__(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray: ...


class EmbeddingHead(Scorer):
    """A linear head over a frozen embedder: ``embed(text) @ W.T + b``. No PyTorch needed to run."""

    def __init__(self, embedder: Embedder, weight: np.ndarray, bias: np.ndarray) -> None:
        self.embedder, self.weight, self.bias = embedder, weight, bias  # (k, d), (k,)

    def __call__(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        vectors = self.embedder.embed_many(list(texts), kind="document", progress=progress)
        return vectors @ self.weight.T + self.bias


class EncoderScorer(Scorer):
    """A PyTorch :class:`~plait.adapt.networks.EncoderNet` with its tokenizer."""

    def __init__(self, net: Any, tokenizer: Any, max_length: int, batch_size: int = 16) -> None:
        self.net, self.tokenizer, self.max_length, self.batch_size = net, tokenizer, max_length, batch_size

    def encode(self, texts: Sequence[str]) -> Any:
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True,
                              return_tensors="pt")

    def __call__(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        import numpy as np
        import torch

        self.net.eval()
        out = []
        # Length-sorted batches pad less; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                batch = self.encode([texts[i] for i in idx])
                logits = self.net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                out.append((idx, logits.float().numpy()))
                if progress:
                    progress(len(idx))
        result = np.zeros((len(texts), self.net.head.out_features), dtype=np.float32)
        for idx, rows in out:
            result[idx] = rows
        return result


class TunedClassifier(Classifier):
    """A classifier made by ``plait tune``; decisions use the per-label thresholds tuned on validation."""

    def __init__(self, spec: ModelSpec, scorer: Scorer, labels: Sequence[str], *, multi_label: bool,
                 label_thresholds: Sequence[float] | None = None) -> None:
        self.spec, self.scorer, self.labels = spec, scorer, tuple(labels)
        self.multi_label = multi_label
        self.label_thresholds = tuple(label_thresholds) if label_thresholds else None

    def predict_proba(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        from plait.tasks.calibration import sigmoid, softmax

        # float64: a confident model's probabilities stay distinguishable from 1.0 (explanations compare them).
        logits = self.scorer(texts, progress).astype("float64")
        return sigmoid(logits) if self.multi_label else softmax(logits)

    def decide(self, row: np.ndarray, threshold: float | None) -> Classification:
        if threshold is not None or self.label_thresholds is None:
            return super().decide(row, threshold)
        order = sorted(range(len(self.labels)), key=lambda j: -float(row[j]))
        scores = tuple(LabelScore(self.labels[j], float(row[j])) for j in order)
        t = self.label_thresholds
        if self.multi_label:
            chosen = tuple(s.label for s in scores if s.probability >= t[self.labels.index(s.label)])
            return Classification(chosen[0] if chosen else None, chosen, scores)
        # argmax(p / t): see plait.adapt.evaluate.
        best = max(range(len(self.labels)), key=lambda j: float(row[j]) / max(t[j], 1e-9))
        return Classification(self.labels[best], (self.labels[best],), scores)

    @property
    def torch_scorer(self) -> EncoderScorer | None:
        """The PyTorch network behind this classifier, when there is one (for integrated gradients)."""
        return self.scorer if isinstance(self.scorer, EncoderScorer) else None


class TextRegressor(Model):
    """Texts → numbers. ``predict`` returns one float per text."""

    def __init__(self, spec: ModelSpec, scorer: Scorer, mean: float, std: float) -> None:
        self.spec, self.scorer, self.mean, self.std = spec, scorer, mean, std

    def predict(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        texts = check_texts(texts)
        if not texts:
            import numpy as np

            return np.zeros(0, dtype=np.float32)
        return self.scorer(texts, progress)[:, 0] * self.std + self.mean


# Loading -------------------------------------------------------------------------------------------


def _require_torch(feature: str) -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(feature, extra="adapt", package="torch and transformers") from exc


def _load_head_arrays(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    from safetensors.numpy import load_file

    path = folder / HEAD_FILE
    if not path.exists():
        raise ModelFileError(path, "is missing", "tune the model again with `plait tune`")
    state = load_file(str(path))
    return state["weight"], state["bias"]


def _encoder_scorer(spec: ModelSpec, folder: Path, settings: Settings, kind: str, models: Models) -> EncoderScorer:
    _require_torch("tuned encoder models")
    import torch
    from transformers import AutoTokenizer

    from plait.adapt.networks import EncoderNet, load_encoder

    torch.set_num_threads(settings.threads)
    if kind == "encoder":
        encoder = load_encoder(folder / "encoder")
    else:
        try:
            from peft import PeftModel
        except ImportError as exc:
            raise MissingDependency("LoRA models", extra="adapt", package="peft") from exc
        from plait.adapt.networks import quiet_peft

        quiet_peft()
        base = load_encoder(models.spec(str(spec.options["base"])).local_path())
        # Merged once at load: inference then costs exactly what the base model costs.
        encoder = PeftModel.from_pretrained(base, str(folder / "adapter")).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
    net = EncoderNet(encoder, int(spec.options["outputs"]))
    net.load_head(folder / HEAD_FILE)
    net.eval()
    return EncoderScorer(net, tokenizer, int(spec.options.get("max_length", 128)))


def _chat(spec: ModelSpec, folder: Path, settings: Settings, models: Models) -> Model:
    _require_torch("tuned chat models")
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise MissingDependency("LoRA chat models", extra="adapt", package="peft") from exc
    from plait.adapt.chat import base_generator_spec
    from plait.adapt.networks import quiet_peft
    from plait.models.hf import TransformersGenerator

    quiet_peft()

    base = base_generator_spec(models.spec(str(spec.options["base"])), settings)
    generator = TransformersGenerator(base, settings)
    generator.model = PeftModel.from_pretrained(generator.model, str(folder / "adapter")).merge_and_unload()
    generator.model.eval()
    generator.spec = spec
    return generator


def load(spec: ModelSpec, settings: Settings, models: Models) -> Model:
    """A tuned model; what it is built on (its embedder, its base model's files) comes from ``models``."""
    folder = spec.local_path()
    kind = str(spec.options.get("kind", ""))
    if kind == "chat-lora":
        return _chat(spec, folder, settings, models)
    scorer: Scorer
    if kind == "head":
        embedder = models.get(str(spec.options["embedder"]))
        if not isinstance(embedder, Embedder):
            raise ModelFileError(folder, f"names '{spec.options['embedder']}' as its embedder, which cannot embed",
                                 "tune it again with an embedding model")
        weight, bias = _load_head_arrays(folder)
        scorer = EmbeddingHead(embedder, weight, bias)
    elif kind in ("encoder", "encoder-lora"):
        scorer = _encoder_scorer(spec, folder, settings, kind, models)
    else:
        raise ModelFileError(folder, f"has an unknown kind '{kind}'", "tune the model again with `plait tune`")
    task = spec.options.get("task")
    if task == "regress":
        return TextRegressor(spec, scorer, float(spec.options["target_mean"]), float(spec.options["target_std"]))
    if task not in ("classify", "multilabel"):
        raise InputError(f"model '{spec.name}' has an unknown task '{task}'")
    thresholds = spec.options.get("thresholds")
    return TunedClassifier(spec, scorer, spec.options["labels"], multi_label=task == "multilabel",
                           label_thresholds=thresholds)
