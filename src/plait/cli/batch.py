"""Commands over many files: expand folders into files, show a progress bar while working, print results."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from plait.errors import InputError

T = TypeVar("T")
R = TypeVar("R")


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


def print_results(done: Sequence[tuple[T, Path, R | str]], show: Callable[[T, R], None], *, as_json: bool,
                  what: str) -> None:
    """``show`` each result that worked; a failed one is a line on stderr (and an error object with --json).

    Raises :class:`InputError` after all are printed when any failed, so the exit code says so.
    """
    failed = 0
    for task, path, result in done:
        if isinstance(result, str):
            failed += 1
            print(f"plait: error: {result}", file=sys.stderr)
            if as_json:
                print(json.dumps({"source": str(path), "error": result}))
        else:
            show(task, result)
    if failed:
        raise InputError(f"{failed} of {len(done)} inputs could not be read as {what} (see above)")
