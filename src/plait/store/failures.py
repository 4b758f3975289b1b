"""What went wrong with plait's database or its home folder, as one line that says what to do.

SQLite and the operating system report a damaged file, a full disk or a read-only folder with terse
messages ("database disk image is malformed", "[Errno 28] No space left on device"); :func:`store_error`
turns them into a :class:`~plait.errors.StoreError` (exit code 3) that names the file and the fix. The CLI
uses it at its edge; the workflow engine uses :func:`is_disk_failure` to stop a run on a full disk instead of
failing item after item.

Nothing is half-written when these happen: every database write is one transaction (rolled back on any
error), and files plait makes are written to a temporary name and renamed into place.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from plait.errors import StoreError

DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}


class DiskFull(StoreError):
    """The disk holding plait's home (or an output folder) has no space left."""


class ReadOnlyHome(StoreError):
    """plait's home, or its database, cannot be written."""


class DamagedDatabase(StoreError):
    """The database file is not a SQLite database, or its pages are damaged."""


class NewerDatabase(StoreError):
    """The database was written by a newer plait, with schema changes this one does not know."""


def is_disk_failure(exc: BaseException) -> bool:
    """A full or read-only disk: retrying an item will not help, the run should stop."""
    if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error):
        text = str(exc).lower()
        return "disk is full" in text or "readonly database" in text or "read-only" in text
    return False


def store_error(exc: BaseException, database: Path | None = None) -> StoreError | None:
    """The StoreError that explains ``exc``, or None when it is not a database or disk failure."""
    if isinstance(exc, StoreError):
        return exc
    where = f" ({database})" if database else ""
    home = database.parent if database else None
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        at = f" {exc.filename}" if exc.filename else (f" {home}" if home else "")
        return DiskFull(f"the disk is full while writing{at}; free some space and run the command again "
                        "(what was being written was not kept, everything before it is intact)")
    if isinstance(exc, PermissionError) and exc.filename:
        return ReadOnlyHome(f"plait cannot write {exc.filename} ({exc.strerror}); make {home or 'plait home'} "
                            "writable by you, or set PLAIT_HOME (or --home) to a writable folder")
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return ReadOnlyHome(f"{exc.filename or home or 'plait home'} is on a read-only file system; set PLAIT_HOME "
                            "(or --home) to a writable folder")
    if not isinstance(exc, sqlite3.Error):
        return None
    text = str(exc)
    low = text.lower()
    if "disk is full" in low:
        return DiskFull(f"the disk holding plait's database{where} is full; free some space and run the command "
                        "again (the last change was rolled back, everything before it is intact)")
    if "readonly database" in low or "read-only" in low or "unable to open database file" in low:
        return ReadOnlyHome(f"plait cannot write its database{where} ({text}); make {home or 'plait home'} "
                            "writable, or set PLAIT_HOME (or --home) to a writable folder")
    if "not a database" in low or "malformed" in low or "corrupt" in low:
        return DamagedDatabase(f"plait's database{where} is damaged ({text}); run `plait doctor` to see what can "
                               "be saved, or `plait restore BACKUP` to go back to a backup")
    if "locked" in low or "busy" in low:
        return StoreError(f"plait's database{where} is busy: another plait process held it for over 30 s; "
                          "run the command again when it has finished")
    return StoreError(f"plait's database{where} failed: {text}; `plait doctor` checks it")
