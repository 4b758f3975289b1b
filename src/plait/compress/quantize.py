"""Quantize ONNX graphs with ONNX Runtime, and PyTorch models with PyTorch's dynamic int8.

Dynamic int8 with per-channel weights: weights are stored as int8 (4× smaller) and MatMuls run as integer
kernels (VNNI where the CPU has it), activations quantized on the fly. Per-channel scales keep MiniLM's
embeddings at cosine ≈ 0.99 to fp32, where one scale per tensor loses much more (≈ 0.96).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

from plait.errors import MissingDependency


def quantize_dynamic_int8(src: Path, dst: Path, *, per_channel: bool = True) -> Path:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise MissingDependency("ONNX quantization", extra="onnx", package="onnxruntime") from exc
    # The quantizer logs every node, and advice on the root logger; plait's output stays readable.
    logging.getLogger("onnxruntime.quantization").setLevel(logging.WARNING)
    dst.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=per_channel)
    finally:
        root.setLevel(level)
    return dst


def quantize_torch_dynamic(model: Any) -> Any:
    """PyTorch dynamic int8: every Linear layer's weights stored as int8, activations quantized per batch.

    Embedding tables stay float32 (PyTorch's dynamic quantization covers Linear layers only), so the
    file shrinks less than an ONNX int8 graph's.
    """
    try:
        import torch
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:
        raise MissingDependency("PyTorch int8 quantization", extra="hf", package="torch") from exc
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the API works in the torch plait supports.
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
