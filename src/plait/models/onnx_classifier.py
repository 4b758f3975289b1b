"""Text classifiers as ONNX graphs through ONNX Runtime: a transformer encoder with its classification
head, exported by ``plait compress`` (output ``logits``), with no PyTorch needed to run it.

Options of the catalog entry: ``tokenizer`` (a ``tokenizer.json``; default: the one next to the graph),
``labels`` (in logit order; required), ``task`` (``classify`` or ``multilabel``), ``thresholds`` (per label,
as ``plait tune`` sets them), ``max_length`` (default 256), ``batch_size`` (default 16). Decisions are
made as for a tuned model (:class:`plait.adapt.serving.TunedClassifier`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plait.adapt.serving import Scorer, TunedClassifier
from plait.errors import CatalogError, ModelFileError
from plait.models.encoder import TOKENIZER, batched, tuned_classifier
from plait.models.onnx import open_session, open_tokenizer
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np


class OnnxScorer(Scorer):
    """Texts → logits of an ONNX graph with a ``logits`` output, in length-sorted batches."""

    def __init__(self, spec: ModelSpec, settings: Settings, n_labels: int) -> None:
        path = spec.local_path(settings.models_dir)
        tokenizer = spec.option_path("tokenizer") or path.parent / TOKENIZER
        if not tokenizer.exists():
            raise ModelFileError(path, f"has no {TOKENIZER} beside it", "give the tokenizer option")
        self.spec, self.n_labels = spec, n_labels
        self.batch_size = int(spec.options.get("batch_size", 16))
        self.session: Any = open_session(str(path), settings.threads)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.tokenizer = open_tokenizer(str(tokenizer), int(spec.options.get("max_length", 256)))

    def logits(self, texts: list[str]) -> np.ndarray:
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                 "token_type_ids": np.zeros_like(ids)}
        out = np.asarray(self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0])
        if out.ndim != 2 or out.shape[1] != self.n_labels:
            raise CatalogError(f"ONNX classifier '{self.spec.name}' gives {out.shape[-1]} scores for "
                               f"{self.n_labels} labels; rebuild it")
        return out.astype(np.float32)

    def __call__(self, texts: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return batched(list(texts), self.batch_size, self.logits, progress)


def load(spec: ModelSpec, settings: Settings) -> TunedClassifier:
    labels = spec.options.get("labels")
    if not labels:
        raise CatalogError(f"ONNX classifier '{spec.name}' needs a labels option (its labels in logit order)")
    return tuned_classifier(spec, OnnxScorer(spec, settings, len(labels)), [str(x) for x in labels])
