"""Plain text in any encoding.

UTF-8 (with or without BOM) and UTF-16 with a BOM are taken as they are; anything else is detected with
charset-normalizer when installed, and otherwise read as cp1252 (a superset of Latin-1 that never
fails), so a user's old files are read rather than refused. Binary data is refused with a clear error.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from plait.errors import InputError
from plait.readers.document import Document, Section, register_reader

MAX_TEXT_BYTES = 200 * 1024 * 1024  # beyond this, a "text" is almost surely not one


def decode_bytes(data: bytes, *, name: str = "input") -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if _looks_binary(data):
        raise InputError(f"{name} looks like binary data, not text; give a text file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return data.decode("cp1252", errors="replace")
    best = from_bytes(data[:1_000_000]).best()
    encoding = best.encoding if best else "cp1252"
    return data.decode(encoding, errors="replace")


def _looks_binary(data: bytes) -> bool:
    sample = data[:8192]
    if not sample:
        return False
    if b"\x00" in sample:
        return True
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return control / len(sample) > 0.05


def read_bytes(path: str | Path, *, limit: int = MAX_TEXT_BYTES, what: str = "files", give: str = "a file") -> bytes:
    """A file's bytes, with the errors a person can act on (missing, a folder, unreadable, too big).

    ``what`` names the files in the size error ("plait reads {what} up to …"); ``give`` says what to give
    instead of a folder.
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(f"{p} is a folder; give {give}")
        size = p.stat().st_size
        if size > limit:
            raise InputError(f"{p} is {size / 1e6:.0f} MB; plait reads {what} up to {limit / 1e6:.0f} MB")
        data = p.read_bytes()
        if data[:8] == b"PLAITENC":  # a file plait wrote encrypted inside its home (a workflow's output)
            from plait.security.storage import unsealed

            return unsealed(p, data)
        return data
    except FileNotFoundError as exc:
        raise InputError(f"{p} does not exist") from exc
    except PermissionError as exc:
        raise InputError(f"{p} cannot be read (permission denied)") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{p} is a folder; give {give}") from exc
    except OSError as exc:
        raise InputError(f"{p} cannot be read ({exc.strerror or exc})") from exc


def read_text(path: str | Path) -> str:
    return decode_bytes(read_bytes(path, what="text files"), name=str(path))


def _read_plain(path: Path) -> Iterator[Document]:
    text = read_text(path)
    yield Document(source=str(path), kind="txt", text=text, title=path.stem, sections=(Section(text),))


register_reader((".txt", ".text", ".log"), _read_plain)
