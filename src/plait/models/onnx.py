"""Transformer encoders as ONNX graphs through ONNX Runtime: embeddings with no PyTorch installed.

Options of the catalog entry:
  tokenizer   a ``tokenizer.json`` (HF tokenizers); required
  pooling     ``mean`` over the attention mask of output 0 (default), ``cls``, or ``output:N`` for a graph
              that already pools (its output N is the sentence vector)
  max_length  truncation length in tokens (default 256)
  batch_size  texts per batch (default 16: small batches pad less and keep the CPU caches warm)

With several threads available, the embedder keeps one single-threaded session per thread and runs
batches on them at once: on a small encoder this gives more throughput than one session using every
thread inside each operator.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plait.errors import CatalogError, MissingDependency, ModelFileError
from plait.models.base import Embedder, EmbedKind
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np


def _import_onnx() -> tuple[Any, Any]:
    try:
        import onnxruntime
        import tokenizers
    except ImportError as exc:
        raise MissingDependency("ONNX models", extra="onnx", package="onnxruntime and tokenizers") from exc
    return onnxruntime, tokenizers


def open_session(path: str, threads: int) -> Any:
    ort, _ = _import_onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped Fail/InvalidProtobuf errors
        raise ModelFileError(path, f"could not be loaded by ONNX Runtime ({str(exc)[:200]})",
                             "re-export the model or re-install its package") from exc


def open_tokenizer(path: str, max_length: int) -> Any:
    _, tokenizers = _import_onnx()
    try:
        tok = tokenizers.Tokenizer.from_file(path)
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise ModelFileError(path, f"is not a valid tokenizer.json ({exc})", "give the tokenizer of the model") from exc
    tok.enable_truncation(max_length=max_length)
    # Pad to the longest text of each batch. Some tokenizer.json files fix padding at 128 tokens, which
    # makes short texts several times slower.
    pad_id = tok.token_to_id("[PAD]") or 0
    tok.enable_padding(pad_id=pad_id, pad_token=tok.id_to_token(pad_id) or "[PAD]")
    return tok


class OnnxEmbedder(Embedder):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        tokenizer_path = spec.option_path("tokenizer")
        if tokenizer_path is None:
            raise CatalogError(f"ONNX model '{spec.name}' needs a tokenizer option (a tokenizer.json path)")
        self.spec = spec
        path = str(spec.local_path(settings.models_dir))
        self.concurrency = max(1, min(settings.threads, 4))
        per_session = max(1, settings.threads // self.concurrency)
        self.sessions: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for _ in range(self.concurrency):
            self.sessions.put(open_session(path, per_session))
        self.tokenizer = open_tokenizer(str(tokenizer_path), int(spec.options.get("max_length", 256)))
        probe = self.sessions.get()
        self.input_names = {i.name for i in probe.get_inputs()}
        self.sessions.put(probe)
        self.pooling = str(spec.options.get("pooling", "mean"))
        self.batch_size = int(spec.options.get("batch_size", 16))
        self.prefixes = spec.options.get("prefixes", {})
        self.dimensions = int(self.embed_batch(["dimension probe"]).shape[1])

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        import numpy as np

        prefix = self.prefixes.get(kind, "")
        encodings = self.tokenizer.encode_batch([prefix + t for t in texts])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        session = self.sessions.get()  # blocks while every session is busy
        try:
            outputs = session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})
        finally:
            self.sessions.put(session)
        if self.pooling.startswith("output:"):
            return np.asarray(outputs[int(self.pooling.split(":")[1])], dtype=np.float32)
        hidden = outputs[0]  # (batch, tokens, dim)
        if self.pooling == "cls":
            return np.asarray(hidden[:, 0], dtype=np.float32)
        weights = mask[:, :, None].astype(np.float32)
        return ((hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)).astype(np.float32)


def load(spec: ModelSpec, settings: Settings) -> OnnxEmbedder:
    return OnnxEmbedder(spec, settings)
