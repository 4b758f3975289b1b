"""What to index under the paths a person gave (found by :func:`plait.readers.walk.walk`), and recognising
content by its hash.

A *unit* is what the index tracks as one file: a regular file, or a folder that a reader takes as one
store (a Maildir). A unit's size and modification time are compared with what was recorded; only units
that differ are hashed, and only those whose hash differs are read again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from plait.readers.walk import walk

HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class Unit:
    path: str  # absolute
    size: int
    mtime_ns: int
    folder: bool = False  # a folder read as one store (a Maildir)
    error: str | None = None  # the unit could not even be examined (stat failed)


def _folder_unit(path: Path) -> Unit:
    # A mail store changes by adding, removing and renaming message files (flags live in Maildir
    # names); the listing of its files, sizes and times therefore stands for its content.
    size, latest = 0, 0
    for entry in _files_under(path):
        size += entry.size
        latest = max(latest, entry.mtime_ns)
    return Unit(str(path), size, latest, folder=True)


def _files_under(folder: Path) -> Iterator[Unit]:
    for entry in walk(folder, stores=False):
        try:
            st = os.stat(entry.path)
        except OSError:
            continue
        yield Unit(str(entry.path), st.st_size, st.st_mtime_ns)


def scan(root: str | Path) -> Iterator[Unit]:
    """Every unit under ``root`` (or ``root`` itself when it is a file), in a stable order."""
    for entry in walk(root):
        if entry.error is not None:
            # A folder that cannot be listed is reported like an unreadable file, not silently dropped.
            yield Unit(str(entry.path), 0, 0, error=entry.error)
        else:
            yield _unit(entry.path)


def _unit(path: Path) -> Unit:
    try:
        if path.is_dir():
            return _folder_unit(path)
        st = path.stat()
    except OSError as exc:
        return Unit(str(path), 0, 0, error=f"cannot be examined ({exc.strerror or exc})")
    return Unit(str(path), st.st_size, st.st_mtime_ns)


def content_hash(unit: Unit) -> str:
    """A hash of the unit's content (for a mail folder, of its message names and sizes)."""
    h = hashlib.blake2b(digest_size=20)
    if unit.folder:
        folder = Path(unit.path)
        keys = []
        for entry in _files_under(folder):
            parts = Path(os.path.relpath(entry.path, folder)).parts
            if parts and parts[0] in ("cur", "new"):  # a message moves from new/ to cur/ once seen
                parts = parts[1:]
            # Maildir flags follow the ':' in a name; a message read or flagged is the same content.
            keys.append(f"{'/'.join(parts).split(':', 1)[0]}\0{entry.size}\n")
        for key in sorted(keys):
            h.update(key.encode("utf-8", "surrogateescape"))
        return "d:" + h.hexdigest()
    with open(unit.path, "rb") as fh:
        while block := fh.read(HASH_BLOCK):
            h.update(block)
    return h.hexdigest()
