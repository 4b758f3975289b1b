"""Taking data out of an encrypted home: a decrypted copy of it, one file, or the master key itself.

``plait security export DEST`` writes every database as plain SQLite (``sqlcipher_export``, checked row by
row) and every sealed file decrypted, under the same relative paths, into a new private folder outside the
home: for moving to another tool, or reading a workflow's outputs with ordinary programs. The copy is
unencrypted: it is the owner's to keep safe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plait.security import databases
from plait.security.crypto import write_file_atomic
from plait.security.keys import KEY_FILE, HomeKeys, SecurityError, key_file, load_home_keys, open_master
from plait.security.permissions import private_dir
from plait.security.rotation import sealed_files


@dataclass
class ExportReport:
    dest: Path
    databases: int
    files: int


def _keys(home: Path) -> HomeKeys:
    keys = load_home_keys(home)
    if keys is None:
        raise SecurityError(f"{home} is not encrypted: its files can be read as they are")
    return keys


def export_home(home: Path, dest: Path, say: Callable[[str], None] = print) -> ExportReport:
    keys = _keys(home)
    dest = dest.absolute()
    if dest.is_relative_to(home.absolute()):
        raise SecurityError("export to a folder outside the home (the copy is unencrypted)")
    if dest.exists() and any(dest.iterdir()):
        raise SecurityError(f"{dest} is not empty; give a new folder")
    private_dir(dest)
    count_db = 0
    for db in databases.sqlite_files(home):
        if databases.is_plain_sqlite(db):
            continue
        target = dest / db.relative_to(home)
        private_dir(target.parent)
        databases.export(db, keys.database_key, target, None)
        count_db += 1
    count_files = 0
    for path in sealed_files(home):
        target = dest / path.relative_to(home)
        private_dir(target.parent)
        write_file_atomic(target, keys.open(path.read_bytes(), what=str(path)))
        count_files += 1
    say(f"exported {count_db} database(s) and {count_files} file(s), unencrypted, to {dest}")
    return ExportReport(dest, count_db, count_files)


def export_file(path: Path) -> bytes:
    """One file plait keeps, decrypted (a digest, a note a workflow wrote)."""
    from plait.security.storage import read_bytes

    return read_bytes(path)


def master_key_hex(home: Path) -> str:
    """The home's 256-bit master key as hex (what PLAIT_KEY takes), for a home whose master is a key."""
    kf = key_file(home)
    if kf is None or not kf.encrypted:
        raise SecurityError(f"{home} is not encrypted")
    if kf.slot.get("kind") != "key":
        raise SecurityError("this home's master is a passphrase: the passphrase itself is the key to keep safe")
    return open_master(kf.slot, kf.home_id, home).key.hex()


__all__ = ["KEY_FILE", "ExportReport", "export_file", "export_home", "master_key_hex"]
