"""Export a PyTorch transformer encoder to ONNX.

Uses the TorchScript exporter (``dynamo=False``): the dynamo exporter needs onnxscript and is far slower
on small models. Attention is exported in its "eager" form, whose plain MatMul/Softmax graph ONNX Runtime
runs faster than the masked SDPA pattern.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from plait.errors import MissingDependency


def export_encoder(model_dir: Path, out: Path, *, opset: int = 17) -> Path:
    """Write ``out`` (an ONNX graph with output ``last_hidden_state``) from a HF encoder folder."""
    try:
        from transformers import AutoModel
    except ImportError as exc:
        raise MissingDependency("exporting a PyTorch model to ONNX", extra="hf", package="torch, transformers") from exc

    from plait.models.hf import quiet_transformers

    quiet_transformers()
    encoder = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    return export_module(encoder, out, output="last_hidden_state", opset=opset)


def export_module(module: Any, out: Path, *, output: str, opset: int = 17) -> Path:
    """Write ``out`` from a loaded PyTorch module (eager attention).

    ``output="last_hidden_state"``: a transformers encoder, exported as its token vectors.
    ``output="logits"``: a module that returns logits itself (plait's encoder + pooling + head).
    """
    try:
        import torch
    except ImportError as exc:
        raise MissingDependency("exporting a PyTorch model to ONNX", extra="hf", package="torch") from exc

    class Wrapped(torch.nn.Module):
        # transformers' forward takes keyword arguments; the exporter passes positional ones.
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            result = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return result.last_hidden_state if output == "last_hidden_state" else result

    names = ["input_ids", "attention_mask", "token_type_ids"]
    example = torch.ones(2, 16, dtype=torch.long)
    # In eval mode before export: the exporter restores the wrapper's mode afterwards, and a new Module
    # starts in training mode, which would leave the caller's model with dropout switched on.
    wrapped = Wrapped(module).eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    # The tracer warns about shape-dependent Python branches in the masking code; the exported graph is
    # checked against PyTorch by the tests, so the warnings would only alarm users.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped, (example, example, torch.zeros_like(example)), str(out),
            input_names=names, output_names=[output], opset_version=opset, dynamo=False,
            dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names},
                          output: {0: "batch", 1: "tokens"} if output == "last_hidden_state" else {0: "batch"}},
        )
    return out
