"""Walking a folder for what plait can read: the one walk the CLI, the index, labelled examples, `compress`
and the folder trigger all use, so they agree on what a folder holds.

Hidden files and folders (``.git``, ``.cache``…) are passed over unless asked for, as are symbolic links to
folders (they can loop). A folder that a reader takes as one store (a Maildir) is one entry, not walked
into. A folder that cannot be listed is an entry with its error, never silently dropped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from plait.errors import InputError
from plait.readers.document import FOLDER_READERS, can_read


@dataclass(frozen=True)
class Entry:
    path: Path
    store: bool = False  # a folder read as one store (a Maildir)
    error: str | None = None  # set when this part of the tree could not be listed


def is_store(path: Path) -> bool:
    """Whether a reader takes this folder as one store of documents (a Maildir)."""
    for _, recognises, _ in FOLDER_READERS:
        try:
            if recognises(path):
                return True
        except OSError:
            return False
    return False


def walk(root: str | Path, *, hidden: bool = False, recursive: bool = True, stores: bool = True) -> Iterator[Entry]:
    """Every file under ``root`` (or ``root`` itself when it is a file or a store), in a stable order.

    With ``stores`` a Maildir is one entry; without, its message files are listed like any others.
    """
    top = Path(root)
    if not top.exists():
        raise InputError(f"{top} does not exist")
    if top.is_file() or (stores and is_store(top)):
        yield Entry(top, store=top.is_dir())
        return
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=errors.append):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            sub = here / d
            if (d.startswith(".") and not hidden) or sub.is_symlink():
                continue
            if stores and is_store(sub):
                yield Entry(sub, store=True)
            else:
                keep.append(d)
        dirnames[:] = keep if recursive else []
        for name in sorted(filenames):
            if hidden or not name.startswith("."):
                yield Entry(here / name)
    for error in errors:
        yield Entry(Path(error.filename or top), error=f"folder cannot be listed ({error.strerror or error})")


def readable_files(root: str | Path) -> list[Path]:
    """The files and stores under ``root`` that plait has a reader for (unreadable ones are left out)."""
    return [e.path for e in walk(root) if e.error is None and (e.store or can_read(e.path))]
