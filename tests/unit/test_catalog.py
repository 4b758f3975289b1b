from pathlib import Path

import pytest

from plait.errors import CatalogError, ModelFileError, ModelNotFound
from plait.models.catalog import BUILTINS, spec_from_source
from plait.runtime import Runtime


def test_builtins_are_listed(runtime: Runtime) -> None:
    names = runtime.catalog.names()
    for name in ("smollm2", "minilm", "minilm-int8", "minilm-q8", "minilm-l3", "e5-small"):
        assert name in names
    assert all(spec.builtin for spec in BUILTINS.values())


def test_unknown_model_lists_the_known_ones(runtime: Runtime) -> None:
    with pytest.raises(ModelNotFound) as err:
        runtime.catalog.get("nosuch")
    assert "smollm2" in str(err.value) and "minilm" in str(err.value)


def test_add_and_remove_a_gguf(runtime: Runtime, tmp_path: Path) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    spec = spec_from_source("tiny", str(gguf))
    assert spec.backend == "llamacpp" and spec.capabilities == ("chat", "complete")
    runtime.catalog.add(spec)
    assert runtime.catalog.get("tiny").source == str(gguf.resolve())
    with pytest.raises(CatalogError, match="already exists"):
        runtime.catalog.add(spec)
    runtime.catalog.remove("tiny")
    with pytest.raises(ModelNotFound):
        runtime.catalog.get("tiny")


def test_corrupt_or_missing_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="broken.gguf.*not a GGUF"):
        spec_from_source("broken", str(bad))
    with pytest.raises(CatalogError, match="neither an existing file"):
        spec_from_source("gone", str(tmp_path / "missing.gguf"))


def test_builtins_cannot_be_shadowed_or_removed(runtime: Runtime) -> None:
    with pytest.raises(CatalogError, match="built-in"):
        runtime.catalog.remove("smollm2")
    with pytest.raises(CatalogError, match="built-in"):
        runtime.catalog.add(BUILTINS["smollm2"])


def test_inference_of_other_sources(tmp_path: Path) -> None:
    remote = spec_from_source("llama3", "http://localhost:11434/v1")
    assert remote.backend == "openai" and remote.options["remote_model"] == "llama3"
    hub = spec_from_source("bge", "BAAI/bge-small-en-v1.5", capabilities=("embed",))
    assert hub.backend == "sentence-transformers" and hub.source == "hf:BAAI/bge-small-en-v1.5"
    folder = tmp_path / "st"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "modules.json").write_text("[]")
    assert spec_from_source("st", str(folder)).backend == "sentence-transformers"


def test_a_name_the_catalog_refuses_is_a_catalog_error_not_a_crash() -> None:
    # (found by the HTTP fuzz test: POST /v1/catalog with such a name answered 500)
    with pytest.raises(CatalogError, match="cannot add model"):
        spec_from_source("bad name/with spaces\n", "https://models.example/v1")
