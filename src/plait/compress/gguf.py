"""GGUF chat models: requantization through llama.cpp's quantize API, and perplexity on real text.

Requantizing an already quantized file (the packaged SmolLM2 is Q4_1) needs ``allow_requantize``: the
weights are dequantized from Q4_1 and quantized again, so a "higher" type (Q8_0) cannot recover what
Q4_1 lost; it only costs less extra error than a lower one. K-quant types work on 256-wide blocks, and
tensors whose rows are not a multiple of 256 fall back to a legacy type (llama.cpp reports it).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from plait.errors import BackendError, InputError, MissingDependency


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency("GGUF requantization", extra="llama-cpp-python", package="llama-cpp-python") from exc
    # llama.cpp logs every tensor it converts; plait reports the result instead.
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    return llama_cpp


@contextlib.contextmanager
def _native_stderr_captured() -> Iterator[Path]:
    """Send what native code writes to stderr (llama.cpp's per-tensor progress) to a file meanwhile."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stderr.txt"
        with path.open("wb") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield path
            finally:
                os.dup2(saved, 2)
                os.close(saved)


def requantize(src: Path, dst: Path, ftype: str, *, threads: int = 2) -> dict[str, Any]:
    """Write ``dst``, ``src`` requantized to ``ftype`` (e.g. ``q4_0``); returns what was done."""
    llama_cpp = _llama_cpp()
    constant = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype.upper()}", None)
    if constant is None:
        raise InputError(f"llama.cpp here has no quantization type {ftype}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = constant
    params.allow_requantize = True
    params.nthread = threads
    dst.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with _native_stderr_captured() as captured:
        code = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if code != 0 or not dst.exists():
        dst.unlink(missing_ok=True)
        said = " ".join(captured.read_text(errors="replace").split()[-40:])
        raise BackendError(f"llama.cpp could not quantize {src.name} to {ftype.upper()} (code {code}): {said}")
    return {"type": ftype.upper(), "from": src.name, "requantized": True,
            "seconds": round(time.perf_counter() - start, 2)}


def perplexity(path: Path, texts: Sequence[str], *, n_ctx: int = 512, max_windows: int = 16,
               threads: int = 2) -> dict[str, float]:
    """Perplexity of the model on ``texts`` as llama.cpp's perplexity tool computes it.

    The texts are joined and cut into windows of ``n_ctx`` tokens; in each window only the second half
    is scored, so every scored token has at least ``n_ctx / 2`` tokens of context.
    """
    import numpy as np

    llama_cpp = _llama_cpp()
    try:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True,
                              n_threads=threads, verbose=False)
    except (ValueError, RuntimeError) as exc:
        raise BackendError(f"llama.cpp could not load {path} ({exc})") from exc
    try:
        tokens = llm.tokenize("\n\n".join(texts).encode("utf-8"), add_bos=False, special=False)
        bos = llm.token_bos()
        width = n_ctx - 1 if bos >= 0 else n_ctx
        windows = [tokens[i:i + width] for i in range(0, len(tokens) - width + 1, width)][:max_windows]
        if not windows:
            raise InputError(f"the text is too short for a perplexity window of {n_ctx} tokens")
        nll, count = 0.0, 0
        for window in windows:
            ids = ([bos] if bos >= 0 else []) + list(window)
            llm.reset()
            llm.eval(ids)
            logits = np.asarray(llm.scores[:len(ids)], dtype=np.float64)  # (tokens, vocab)
            first = len(ids) // 2
            rows = logits[first:-1]
            top = rows.max(axis=1, keepdims=True)
            log_z = (top[:, 0] + np.log(np.exp(rows - top).sum(axis=1)))
            targets = np.asarray(ids[first + 1:])
            nll += float((log_z - rows[np.arange(len(targets)), targets]).sum())
            count += len(targets)
        return {"perplexity": math.exp(nll / count), "tokens_scored": float(count), "windows": float(len(windows))}
    finally:
        close = getattr(llm, "close", None)
        if close:
            close()
