"""Authenticated encryption of the files plait keeps (vector indexes, workflow outputs): AES-256-GCM in
segments, from ``cryptography``.

Why this format: a file is sealed with a key derived for it alone (HKDF over the home's data key and a
random 16-byte salt in its header), so nonces never repeat across files; the body is cut into 1 MiB
segments, each sealed with its position and a last-segment flag in the nonce (the STREAM construction
that age and Tink use), so a segment cannot be moved, dropped or appended without the tag check
failing, and the header (format, key id, salt) is bound to every segment as associated data. A file
that was cut short, edited or sealed under another key raises :class:`DecryptError`.

Layout::

    b"PLAITENC" | version (1 byte) | key id (4 bytes, big-endian) | salt (16 bytes)
    segment 0 ciphertext + tag | segment 1 … | last segment (may be empty) + tag
"""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

from plait.errors import PlaitError
from plait.security.deps import require_crypto

MAGIC = b"PLAITENC"
VERSION = 1
SALT_BYTES = 16
HEADER = struct.Struct(">8sBI16s")
SEGMENT = 1 << 20  # plaintext bytes per sealed segment
TAG = 16
FILE_MODE = 0o600


class DecryptError(PlaitError):
    """A sealed file cannot be opened: wrong key, or the file was damaged or changed."""

    exit_code = 7


def _aead() -> tuple[type, type, type]:
    require_crypto()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return AESGCM, HKDF, hashes.SHA256


def _file_key(data_key: bytes, salt: bytes) -> bytes:
    _, hkdf, sha256 = _aead()
    derived: bytes = hkdf(algorithm=sha256(), length=32, salt=salt, info=b"plait file v1").derive(data_key)
    return derived


def _nonce(index: int, last: bool) -> bytes:
    # 11-byte segment counter and a 1-byte last flag: 12 bytes, GCM's native nonce size.
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def is_sealed(data: bytes) -> bool:
    return data[:len(MAGIC)] == MAGIC


def sealed_key_id(data: bytes) -> int | None:
    """The data key id a sealed file (or its first bytes) was sealed with; None if not sealed."""
    if len(data) < HEADER.size or not is_sealed(data):
        return None
    return int(HEADER.unpack(data[:HEADER.size])[2])


def seal(plaintext: bytes, data_key: bytes, key_id: int) -> bytes:
    """``plaintext`` encrypted and authenticated under ``data_key`` (32 bytes), with its id in the header."""
    aesgcm, _, _ = _aead()
    salt = os.urandom(SALT_BYTES)
    header = HEADER.pack(MAGIC, VERSION, key_id, salt)
    cipher = aesgcm(_file_key(data_key, salt))
    parts = [header]
    view = memoryview(plaintext)
    count = max(1, -(-len(plaintext) // SEGMENT))  # an empty file is one empty last segment
    for index in range(count):
        chunk = bytes(view[index * SEGMENT:(index + 1) * SEGMENT])
        parts.append(cipher.encrypt(_nonce(index, index == count - 1), chunk, header))
    return b"".join(parts)


def open_sealed(data: bytes, data_key: bytes, *, what: str = "the file") -> bytes:
    """The plaintext of a sealed file; :class:`DecryptError` if it is damaged, truncated or another key's."""
    aesgcm, _, _ = _aead()
    from cryptography.exceptions import InvalidTag

    if len(data) < HEADER.size + TAG or not is_sealed(data):
        raise DecryptError(f"{what} is not a file plait encrypted (or it was cut short)")
    magic, version, _key_id, salt = HEADER.unpack(data[:HEADER.size])
    if version != VERSION:
        raise DecryptError(f"{what} was encrypted by a newer plait (format {version}); upgrade plait")
    header = data[:HEADER.size]
    cipher = aesgcm(_file_key(data_key, salt))
    body = memoryview(data)[HEADER.size:]
    sealed_segment = SEGMENT + TAG
    count = max(1, -(-len(body) // sealed_segment))
    out = []
    for index in range(count):
        chunk = bytes(body[index * sealed_segment:(index + 1) * sealed_segment])
        try:
            out.append(cipher.decrypt(_nonce(index, index == count - 1), chunk, header))
        except InvalidTag as exc:
            raise DecryptError(f"{what} cannot be decrypted: it was changed or cut short, or it belongs to another "
                               "plait home (its key differs)") from exc
    return b"".join(out)


def write_file_atomic(path: Path, data: bytes, *, mode: int = FILE_MODE) -> None:
    """Write a whole file or nothing, created with ``mode`` from the start (never readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
        # The rename is on disk too before the caller goes on (the workflow ledger records the effect as done
        # next: a power cut must not leave a ledger row for a file that is not there).
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
