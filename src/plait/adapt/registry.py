"""Publishing a tuned model as ``NAME@VERSION``: files first, then the catalog entry, never half of it.

A method writes into a hidden staging folder under ``$PLAIT_HOME/models``; only when it is complete is
it renamed to ``NAME@V`` (an atomic rename on one file system) and then registered. If registration
fails, or Ctrl-C arrives in between, the folder is removed again, so the catalog never names files that
are not all there, and no orphan folder is left. ``NAME`` alone then resolves to the newest version.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from plait.errors import CatalogError, InputError
from plait.models.catalog import BUILTINS, Catalog
from plait.models.spec import ModelSpec

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise InputError(f"'{name}' cannot name a model: use letters, digits, '.', '_' or '-' (no '@'; plait adds "
                         "the version)")
    if name in BUILTINS:
        raise InputError(f"'{name}' is a built-in model; choose another name for your tuned model")
    return name


def staging_folder(models_dir: Path, name: str, run_id: str) -> Path:
    folder = models_dir / f".{name}.{run_id}.partial"
    folder.mkdir(parents=True, exist_ok=False)
    return folder


def next_version(catalog: Catalog, models_dir: Path, name: str) -> int:
    on_disk = [int(m.group(1)) for p in models_dir.glob(f"{name}@*")
               if (m := re.fullmatch(re.escape(name) + r"@(\d+)", p.name))]
    return max([0, *catalog.versions(name), *on_disk]) + 1


def publish(catalog: Catalog, models_dir: Path, name: str, staging: Path,
            make_spec: Callable[[str, int, Path], ModelSpec]) -> ModelSpec:
    """Move ``staging`` to ``NAME@V`` and register it; returns the registered entry."""
    for _ in range(20):  # another tune of the same name may take a version first
        version = next_version(catalog, models_dir, name)
        final = models_dir / f"{name}@{version}"
        try:
            final.mkdir()  # claims the version: mkdir fails if another process has it
        except FileExistsError:
            continue
        registered = False
        try:
            os.replace(staging, final)  # final is empty, so the rename replaces it atomically
            spec = make_spec(f"{name}@{version}", version, final)
            catalog.add(spec)
            registered = True
            return spec
        except CatalogError:
            continue  # the name was taken meanwhile: the files go back to staging (below); try the next version
        finally:
            if not registered and final.exists():
                # Hand the files back to the caller's staging folder (it removes or retries them).
                if not staging.exists():
                    os.replace(final, staging)
                else:
                    shutil.rmtree(final, ignore_errors=True)
    raise CatalogError(f"could not find a free version for '{name}'; remove old versions with `plait models remove`")
