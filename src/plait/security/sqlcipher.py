"""Opening SQLCipher databases, so that code written for the standard ``sqlite3`` module works unchanged.

``sqlcipher3`` has the ``sqlite3`` API, but its own exception classes: an ``except sqlite3.IntegrityError``
elsewhere in plait would not catch SQLCipher's. :func:`_share_exceptions` makes each of its error classes
also a subclass of the standard one of the same name (once), so every existing handler catches both.
SQLCipher's own error log (it prints failed page checks to stderr) is silenced: a wrong key is reported
once, by plait, as one line.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from plait.security.deps import require_sqlcipher

_NAMES = ("Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError", "IntegrityError",
          "InternalError", "ProgrammingError", "NotSupportedError")
_shared = False


def _share_exceptions(module: Any) -> None:
    global _shared
    if _shared:
        return
    for name in _NAMES:
        theirs, ours = getattr(module, name), getattr(sqlite3, name)
        # Warning and Error derive from Exception, and the standard ones carry extra fields (a layout Python
        # cannot graft on); every error SQLCipher raises is one of the subclasses, which gain the standard
        # class of their name as a second base (and through it sqlite3.Error).
        if issubclass(theirs, ours) or theirs.__bases__ == (Exception,):
            continue
        theirs.__bases__ = (*theirs.__bases__, ours)
    _shared = True


def sqlcipher() -> Any:
    module = require_sqlcipher()
    _share_exceptions(module)
    return module


def open_encrypted(target: str, key: bytes, *, timeout: float, uri: bool = False) -> sqlite3.Connection:
    """A SQLCipher connection keyed with the 32 raw bytes ``key`` (no per-connection key stretching)."""
    module = sqlcipher()
    if len(key) != 32:
        raise ValueError("a database key is 32 bytes")
    conn = module.connect(target, timeout=timeout, isolation_level=None, check_same_thread=False, uri=uri)
    conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    conn.row_factory = module.Row
    return conn


def wrong_key(exc: BaseException) -> bool:
    """Whether a database error means the key does not open the file (SQLCipher cannot tell a wrong key from
    a damaged file: both fail the first page's check)."""
    return isinstance(exc, sqlite3.DatabaseError) and "file is not a database" in str(exc)
