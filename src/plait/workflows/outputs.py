"""What workflows make: the folder each writes its files into, and reading those files back for a person
(the web page's Today and Workflows views).

A file is read back only from inside its workflow's output folder: a name that leads out of it (``..``, a
link elsewhere, an absolute path) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from plait.errors import InputError
from plait.workflows.context import resolve_path
from plait.workflows.spec import Workflow

MAX_LISTED = 500
MAX_READ_BYTES = 5_000_000


def output_folder(workflow: Workflow, home: Path) -> Path:
    """Where a workflow's sinks write relative paths: its ``output`` setting, else ``$PLAIT_HOME/output/NAME``."""
    if workflow.output:
        return resolve_path(workflow.output, workflow.base_dir)
    return home / "output" / workflow.name


@dataclass(frozen=True)
class OutputFile:
    path: str  # relative to the output folder, with /
    bytes: int
    modified: float  # seconds since the epoch


def list_outputs(folder: Path) -> list[OutputFile]:
    """The files in an output folder, newest first (at most MAX_LISTED)."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)  # the folder's own path may be hidden (the default ~/.plait)
        if path.is_file() and not path.is_symlink() and not any(p.startswith(".") for p in relative.parts):
            st = path.stat()
            found.append(OutputFile(relative.as_posix(), st.st_size, st.st_mtime))
    found.sort(key=lambda f: -f.modified)
    return found[:MAX_LISTED]


def read_output(folder: Path, relative: str) -> bytes:
    """A file of the output folder; InputError for a name that leaves it or a file too large to show."""
    target = (folder / relative).resolve()
    if not relative or Path(relative).is_absolute() or not target.is_relative_to(folder.resolve()):
        raise InputError(f"'{relative}' is not a file of this workflow's output folder")
    if not target.is_file():
        raise InputError(f"no output file '{relative}'")
    if target.stat().st_size > MAX_READ_BYTES:
        raise InputError(f"'{relative}' is larger than {MAX_READ_BYTES // 1_000_000} MB; open it from {folder}")
    from plait.security.storage import read_bytes

    return read_bytes(target)  # decrypted when the home is encrypted
