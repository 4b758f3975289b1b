"""Recipes that build a derived model's files from its parent, on first use.

A catalog entry with ``source = "derived:PARENT"`` and ``options.recipe = NAME`` has its files in
``$PLAIT_HOME/models/<entry name>/``; when they are missing, loading runs the recipe once. The result is
written under a temporary name and renamed into place, so a killed build never leaves a half file and two
processes building at once both end with a complete one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from plait.errors import CatalogError
from plait.models.spec import ModelSpec

Recipe = Callable[[ModelSpec, Path], None]  # (parent, output file)
RECIPES: dict[str, Recipe] = {}


def recipe(name: str) -> Callable[[Recipe], Recipe]:
    def register(fn: Recipe) -> Recipe:
        if name in RECIPES:
            raise CatalogError(f"recipe '{name}' is registered twice")
        RECIPES[name] = fn
        return fn
    return register


@recipe("onnx-int8")
def onnx_int8(parent: ModelSpec, out: Path) -> None:
    """PyTorch encoder → ONNX (fp32) → dynamic int8 with per-channel weights."""
    from plait.compress.export import export_encoder
    from plait.compress.quantize import quantize_dynamic_int8

    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        fp32 = export_encoder(parent.local_path(), Path(tmp) / "fp32.onnx")
        quantize_dynamic_int8(fp32, out)


def build(spec: ModelSpec, parent: ModelSpec, target: Path) -> Path:
    name = str(spec.options.get("recipe", ""))
    if name not in RECIPES:
        raise CatalogError(f"model '{spec.name}' names an unknown recipe '{name}'; known: {', '.join(RECIPES)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        RECIPES[name](parent, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
