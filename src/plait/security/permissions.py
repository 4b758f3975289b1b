"""Private by default on disk: plait's home is 0700 and every file in it 0600.

The CLI sets the process umask to 077 at start (:func:`private_umask`), so every file any library creates
under the home (SQLite's WAL, log files, model folders) is private from its first byte; folders plait makes
itself are created 0700 even without it. :func:`check` lists what is looser (a home made by an older plait,
a file copied in) and :func:`fix` tightens it (`plait security status --fix`).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
UMASK = 0o077


def private_umask() -> int:
    """Make files and folders this process creates private to its user; returns the previous umask."""
    return os.umask(UMASK)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) as 0700; an existing folder plait made keeps its mode."""
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask; be exact
    return path


def touch_private(path: Path) -> None:
    """Create an empty 0600 file if missing (SQLite then gives its WAL and shm files the same mode)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


@dataclass(frozen=True)
class Loose:
    path: Path
    mode: int
    wanted: int

    def __str__(self) -> str:
        return f"{self.path}: {self.mode:04o}, should be {self.wanted:04o}"


def check(home: Path) -> list[Loose]:
    """Everything under ``home`` that group or others may read, write or enter (symlinks are not followed)."""
    found: list[Loose] = []
    if not home.is_dir():
        return found
    for root, dirs, files in os.walk(home):
        base = Path(root)
        for name in dirs + files:
            path = base / name
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue  # a link (e.g. a shared models folder) is judged where it points, not here
            mode = stat.S_IMODE(st.st_mode)
            if mode & 0o077:
                found.append(Loose(path, mode, DIR_MODE if stat.S_ISDIR(st.st_mode) else mode & 0o700))
    st = home.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        found.insert(0, Loose(home, stat.S_IMODE(st.st_mode), DIR_MODE))
    return found


def fix(loose: list[Loose]) -> int:
    fixed = 0
    for item in loose:
        try:
            os.chmod(item.path, item.wanted)
            fixed += 1
        except FileNotFoundError:
            continue
    return fixed
