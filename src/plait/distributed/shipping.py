"""What a Ray worker needs to load plait's models exactly as this machine does, and nothing personal.

A :class:`Shipment` carries:

- the settings, without the home folder (so ``threads``, batch sizes and default models are this
  machine's: the same model configuration gives the same vectors, bit for bit);
- the person's own catalog entries (names, backends, options: no data);
- the files of the wanted models that only this machine has: models plait built (``minilm-q8`` is built
  from ``minilm`` on first use) and models added from a local path; models that come in Python packages
  (the built-ins) are not copied, the workers have them when they have plait installed;
- the modules that register backends plait does not ship itself (a plugin's).

It goes into Ray's object store once per run; each worker unpacks it into a home of its own under the
system's temporary folder (:func:`worker_runtime`) and builds an ordinary plait runtime on it. The
person's database, index, mail and files never leave their machine this way.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.models.catalog import Catalog
from plait.models.spec import ModelSpec
from plait.processes import pid_alive

if TYPE_CHECKING:
    from plait.runtime import Runtime

NOT_PATHS = ("package:", "hf:", "http://", "https://", "derived:")
WORKER_HOMES = "plait-ray"  # under the temporary folder of each worker's machine


@dataclass(frozen=True)
class Shipment:
    settings: dict[str, Any]
    specs: tuple[ModelSpec, ...]  # the person's catalog entries, paths pointing into the archive
    archive: bytes  # a tar of files, relative to the worker's home
    backend_modules: tuple[str, ...] = ()
    models: tuple[str, ...] = field(default=())  # the models it was made for

    @property
    def digest(self) -> str:
        return hashlib.blake2b(self.archive, digest_size=8).hexdigest()


def _local_path(value: Any) -> Path | None:
    if not isinstance(value, str) or value.startswith(NOT_PATHS):
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() and path.exists() else None


def _closure(catalog: Catalog, names: Iterable[str]) -> list[ModelSpec]:
    """The named entries and the ones they are built on (a derived model's parent, a tuned model's base or
    embedder: option values naming another entry)."""
    from plait.errors import ModelNotFound

    known = set(catalog.names())
    seen: dict[str, ModelSpec] = {}
    todo = [n for n in names if n]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            spec = catalog.get(name)
        except ModelNotFound:
            continue  # the task will say so where it runs
        seen[name] = spec
        refs = [spec.parent] + [v for v in spec.options.values() if isinstance(v, str) and v in known]
        todo.extend(r for r in refs if r and r not in seen)
    return list(seen.values())


def ship(runtime: Runtime, names: Iterable[str]) -> Shipment:
    """Pack what workers need to load the models ``names`` (and what they are built on)."""
    from plait.models.loading import BACKENDS, ensure_built
    from plait.security.storage import unsealed

    settings = runtime.settings
    models_dir = settings.models_dir
    # The entries as stored: the runtime's own catalog may point some at where they are served.
    catalog = Catalog(runtime.store)
    needed = _closure(catalog, names)
    buffer = io.BytesIO()
    packed: set[str] = set()
    modules: set[str] = set()

    def add(path: Path, arcname: str) -> str:
        if arcname not in packed:
            packed.add(arcname)
            for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
                if file.is_file():
                    # A file plait sealed in an encrypted home goes as its content: the worker has no key.
                    data = unsealed(file, file.read_bytes())
                    info = tarfile.TarInfo(arcname + ("/" + file.relative_to(path).as_posix() if path.is_dir() else ""))
                    info.size, info.mode = len(data), 0o600
                    tar.addfile(info, io.BytesIO(data))
        return arcname

    def place(spec: ModelSpec, path: Path) -> str:
        """Where a local file of ``spec`` goes in the worker's home: the same place under models/, or
        shipped/NAME/ for files elsewhere on this machine."""
        if path.resolve().is_relative_to(models_dir.resolve()):
            return add(path, "models/" + path.resolve().relative_to(models_dir.resolve()).as_posix())
        return add(path, f"shipped/{spec.name}/{path.name}")

    relocated: dict[str, ModelSpec] = {}
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for spec in needed:
            ensure_built(spec, settings, catalog)
            own = models_dir / spec.name
            if own.exists():
                add(own, f"models/{spec.name}")
            loader = BACKENDS.get(spec.backend)
            if loader is not None and not loader.__module__.startswith("plait."):
                modules.add(loader.__module__)
            if spec.builtin:
                continue
            update: dict[str, Any] = {}
            if (source := _local_path(spec.source)) is not None:
                update["source"] = "@home/" + place(spec, source)
            options = dict(spec.options)
            for key, value in spec.options.items():
                if (path := _local_path(value)) is not None:
                    options[key] = "@home/" + place(spec, path)
            if options != spec.options:
                update["options"] = options
            relocated[spec.name] = spec.model_copy(update=update)
    user_specs = tuple(relocated.get(s.name, s) for s in catalog.all() if not s.builtin)
    return Shipment(settings=settings.model_dump(exclude={"home"}), specs=user_specs, archive=buffer.getvalue(),
                    backend_modules=tuple(sorted(modules)), models=tuple(s.name for s in needed))


def _at_home(value: Any, home: Path) -> Any:
    return str(home / value.removeprefix("@home/")) if isinstance(value, str) and value.startswith("@home/") \
        else value


def worker_home(base: Path | None = None) -> Path:
    """A fresh home for this worker process; homes of worker processes that are gone are removed."""
    root = base or Path(tempfile.gettempdir()) / WORKER_HOMES
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        pid = old.name.split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))



def worker_runtime(shipment: Shipment, home: Path | None = None) -> Runtime:
    """An ordinary plait runtime on a worker, with the shipped settings, catalog entries and files."""
    from plait.runtime import Runtime
    from plait.settings import Settings
    from plait.store import Store

    home = home or worker_home()
    with tarfile.open(fileobj=io.BytesIO(shipment.archive), mode="r") as tar:
        tar.extractall(home, filter="data")
    for module in shipment.backend_modules:
        importlib.import_module(module)  # registers its backends, as it did on the person's machine
    settings = Settings(home=home, **shipment.settings)
    # A plain database: a worker's home holds catalog entries and model files, none of the person's data,
    # and a worker has no key to open an encrypted one.
    runtime = Runtime(settings, store=Store(settings.database_path, key=None))
    for spec in shipment.specs:
        options = {k: _at_home(v, home) for k, v in spec.options.items()}
        runtime.catalog.add(spec.model_copy(update={"source": _at_home(spec.source, home), "options": options}),
                            replace=True)
    return runtime

