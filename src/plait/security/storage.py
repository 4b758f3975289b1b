"""Reading and writing the files plait keeps, sealed when they are inside an encrypted home.

Callers pass a path and bytes; whether the bytes are encrypted is decided here, by the home the path is
in (a folder with ``security.json``), so the vector index, workflow sinks and exports share one rule:
inside an encrypted home a file is sealed (:mod:`plait.security.crypto`), elsewhere (a folder the user
chose for a workflow's output) it is written as is. Either way it is created readable by its owner only.
"""

from __future__ import annotations

from pathlib import Path

from plait.security.crypto import is_sealed, write_file_atomic
from plait.security.keys import SecurityError, keys_for


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, sealed if ``path`` is inside an encrypted home."""
    keys = keys_for(path)
    write_file_atomic(path, keys.seal(data) if keys is not None else data)


def read_bytes(path: Path) -> bytes:
    """The content of a file plait wrote with :func:`write_bytes` (decrypted when it was sealed)."""
    raw = path.read_bytes()
    if not is_sealed(raw):
        return raw
    keys = keys_for(path)
    if keys is None:
        raise SecurityError(f"{path} is encrypted, but not inside a plait home with its key file (security.json); "
                            "read it through the home it came from")
    return keys.open(raw, what=str(path))


def unsealed(path: Path, data: bytes) -> bytes:
    """``data`` read from ``path`` by other means, decrypted if plait sealed it: so plait's readers (the index,
    calendars) read plait's own encrypted outputs like any file."""
    if not is_sealed(data):
        return data
    keys = keys_for(path)
    if keys is None:
        raise SecurityError(f"{path} was encrypted by plait, but is not inside the plait home that holds its key")
    return keys.open(data, what=str(path))


def read_text(path: Path, encoding: str = "utf-8") -> str:
    return read_bytes(path).decode(encoding)


def sealed(path: Path) -> bool:
    """Whether the file at ``path`` is encrypted by plait."""
    with open(path, "rb") as fh:
        return is_sealed(fh.read(8))
