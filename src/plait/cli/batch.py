"""Commands over many files: expand folders into files, and show a progress bar while working."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from plait.errors import InputError


def expand_files(paths: Sequence[Path], suffixes: Sequence[str], *, what: str) -> list[Path]:
    """Files as given, plus the files with one of ``suffixes`` under each folder (recursively, sorted).

    A named file is kept whatever its suffix, so the task reports clearly when it is not a ``what``.
    """
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise InputError(f"{path} holds no {what} files ({', '.join(suffixes)})")
            out.extend(found)
        else:
            out.append(path)
    if not out:
        raise InputError(f"give one or more {what} files or folders")
    return out


@contextmanager
def progress(total: int, label: str, *, min_items: int = 2) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; draws a bar on a terminal when there are at least ``min_items`` items."""
    if total < min_items or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)
