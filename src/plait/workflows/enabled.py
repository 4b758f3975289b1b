"""The enabled workflows: the YAML files in ``$PLAIT_HOME/workflows/`` (what ``plait up`` runs), and the
bundled ones shipped with plait (``plait workflows enable inbox-triage`` copies one there)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from plait.errors import InputError
from plait.workflows.errors import SpecError
from plait.workflows.spec import Workflow

BUNDLED = Path(__file__).resolve().parent / "bundled"
SUFFIXES = (".yml", ".yaml")
DISABLED = ".disabled"  # a disabled workflow's file keeps its place with this suffix added, ready to enable again


def workflows_folder(home: Path) -> Path:
    return home / "workflows"


@dataclass(frozen=True)
class Found:
    path: Path
    workflow: Workflow | None
    error: SpecError | None

    @property
    def name(self) -> str:
        return self.workflow.name if self.workflow else self.path.stem


def discover(folder: Path) -> list[Found]:
    """Every workflow file in ``folder``, loaded, or with the error that stops it loading."""
    from plait.workflows.loader import load_workflow

    if not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and p.is_file()):
        try:
            found.append(Found(path, load_workflow(path), None))
        except SpecError as exc:
            found.append(Found(path, None, exc))
    return found


def bundled() -> list[Path]:
    return sorted(p for p in BUNDLED.iterdir() if p.suffix in SUFFIXES)


def resolve(name_or_path: str, folder: Path) -> Path:
    """A workflow file from a path, a name in the enabled folder, or a bundled workflow's name."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    for base in (folder, BUNDLED):
        for suffix in SUFFIXES:
            candidate = base / f"{name_or_path}{suffix}"
            if candidate.is_file():
                return candidate
    for found in discover(folder):
        if found.workflow and found.workflow.name == name_or_path:
            return found.path
    names = sorted({p.stem for p in bundled()} | {f.name for f in discover(folder)})
    raise InputError(f"no workflow file or workflow named '{name_or_path}'; known: {', '.join(names) or '(none)'}")


def enable(name_or_path: str, folder: Path, *, replace: bool = False) -> Path:
    """Copy a workflow file (or a bundled one by name) into the enabled folder, after validating it."""
    from plait.workflows.loader import load_workflow

    parked = folder / f"{name_or_path}.yml{DISABLED}"
    if parked.is_file() and not (folder / f"{name_or_path}.yml").exists():
        parked.rename(folder / f"{name_or_path}.yml")  # disabled before: enabled again as it was
    source = resolve(name_or_path, folder)
    workflow = load_workflow(source)
    target = folder / f"{workflow.name}.yml"
    if target.exists() and target.resolve() != source.resolve() and not replace:
        raise InputError(f"{target} exists; pass --replace to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    if target.resolve() != source.resolve():
        shutil.copyfile(source, target)
    return target


def disable(name: str, folder: Path) -> Path:
    """Stop running a workflow: its file in the enabled folder gets the .disabled suffix (kept, with any
    edits, for enabling again); its records stay in the database."""
    for found in discover(folder):
        if found.name == name:
            parked = found.path.with_name(found.path.name + DISABLED)
            found.path.rename(parked)
            return parked
    raise InputError(f"no enabled workflow '{name}'; see `plait workflows list`")
