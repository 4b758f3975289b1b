"""A lock on a plait home: every process using it holds it shared; changing its keys needs it alone.

Rotating the database key rewrites every page; a process still holding the old key would then write pages
the new key cannot read. So :class:`plait.store.Store` holds a shared ``flock`` on ``$PLAIT_HOME/.lock``
while it is open, and a key rotation or migration takes it exclusively, refusing to start while plait runs
elsewhere. ``flock`` locks die with their process, so a killed plait never leaves the home locked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from plait.security.keys import SecurityError

LOCK_FILE = ".lock"


class HomeLock:
    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    @classmethod
    def _open(cls, home: Path) -> int:
        try:
            return os.open(home / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except PermissionError:
            # A home made read-only keeps its lock file: flock works on a descriptor opened for reading.
            return os.open(home / LOCK_FILE, os.O_RDONLY)

    @classmethod
    def shared(cls, home: Path) -> HomeLock:
        fd = cls._open(home)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            # A rotation or migration is running: wait for it (it ends by itself), as SQLite waits for a writer.
            fcntl.flock(fd, fcntl.LOCK_SH)
        return cls(fd)

    @classmethod
    def exclusive(cls, home: Path, what: str) -> HomeLock:
        fd = cls._open(home)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise SecurityError(f"cannot {what} while plait is running on {home} (a server, `plait up` or another "
                                "command); stop it and try again") from exc
        return cls(fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __enter__(self) -> HomeLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
