"""Rotating a home's data key: every database and sealed file re-encrypted, resumable, nothing lost.

The steps, each recorded in ``security.json`` before the next starts:

1. a new data key is made and stored (wrapped) beside the old one, with ``rotation: {from, to}``; with
   ``new_master`` every data key is re-wrapped under the new master key at the same time;
2. each database is re-keyed in place (SQLCipher's ``PRAGMA rekey``: one transaction, so a crash leaves
   it wholly old or wholly new; a rerun tries the new key first) and checked;
3. each sealed file whose header names the old key is re-sealed with the new one (one atomic replace per
   file; the header says which key a file needs, so a half-done pass is simply continued);
4. the new key becomes current, the old one is forgotten, the rotation record is cleared.

Until step 4 both keys are kept, so every byte stays readable whatever point a crash interrupts; running
``plait security rotate-key`` again finishes the rotation that was under way.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plait.security import databases
from plait.security.crypto import DecryptError, is_sealed, open_sealed, seal, sealed_key_id, write_file_atomic
from plait.security.homelock import HomeLock
from plait.security.keys import (
    KEY_FILE,
    KeyFile,
    Master,
    SecurityError,
    keyring_delete,
    keyring_entry,
    keyring_put,
    open_master,
    unwrap,
    wrap,
)


@dataclass
class RotationReport:
    old_key: int
    new_key: int
    databases: int = 0
    files: int = 0
    resumed: bool = False
    new_master: bool = False


def sealed_files(home: Path) -> list[Path]:
    """Every file plait sealed under ``home`` (found by its header), outside linked folders."""
    found = []
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
        for name in files:
            path = Path(root, name)
            try:
                with open(path, "rb") as fh:
                    if is_sealed(fh.read(8)):
                        found.append(path)
            except OSError:
                continue
    return found


def rotate(home: Path, *, new_master: Master | None = None, say: Callable[[str], None] = print,
           stop_after: str | None = None) -> RotationReport:
    """Rotate the data key of the encrypted home ``home`` (see the module docstring).

    ``stop_after`` ("key", "databases", "files") stops there as a crash would: for the tests of resuming.
    """
    with HomeLock.exclusive(home, "rotate the key"):
        kf = KeyFile.read(home / KEY_FILE)
        if kf is None or not kf.encrypted:
            raise SecurityError(f"{home} is not encrypted; `plait security init` encrypts it")
        if kf.rotation is not None and kf.rotation.get("migration"):
            raise SecurityError("encrypting this home was interrupted; run `plait security init` to finish it first")
        master = open_master(kf.slot, kf.home_id, home)
        keys = {key_id: unwrap(master.key, w, kf.home_id, key_id) for key_id, w in kf.wrapped.items()}
        resumed = kf.rotation is not None
        if resumed:
            assert kf.rotation is not None
            old, new = int(kf.rotation["from"]), int(kf.rotation["to"])
            say(f"resuming the rotation from key {old} to key {new}")
        else:
            old, new = kf.current, max(kf.wrapped) + 1
            keys[new] = secrets.token_bytes(32)
            old_entry = kf.slot.get("keyring") if kf.slot.get("kind") == "key" else None
            if new_master is not None:
                slot = dict(new_master.slot)
                if slot.get("kind") == "key" and slot.get("keyring"):
                    slot["keyring"] = keyring_entry(kf.home_id, _entry_version(old_entry) + 1)
                    keyring_put(slot["keyring"], new_master.key)  # before the key file names it
                kf.slot, master = slot, new_master
            kf.wrapped = {key_id: wrap(master.key, key, kf.home_id, key_id) for key_id, key in keys.items()}
            kf.rotation = {"from": old, "to": new, "started_at": time.time(),
                           "old_keyring": old_entry if new_master is not None else None}
            kf.write()
        report = RotationReport(old, new, resumed=resumed, new_master=new_master is not None)
        if stop_after == "key":
            return report

        for db in databases.sqlite_files(home):
            report.databases += _rekey(db, keys[old], keys[new])
        kf.database = new
        kf.write()
        if stop_after == "databases":
            return report

        for path in sealed_files(home):
            data = path.read_bytes()
            if sealed_key_id(data) == new:
                continue
            key_id = sealed_key_id(data)
            if key_id not in keys:
                raise SecurityError(f"{path} is sealed with key {key_id}, which this home no longer has")
            plain = open_sealed(data, keys[key_id], what=str(path))
            write_file_atomic(path, seal(plain, keys[new], new))
            report.files += 1
            if stop_after == "one-file":
                return report
        if stop_after == "files":
            return report

        old_keyring = kf.rotation.get("old_keyring") if kf.rotation else None
        kf.current = new
        kf.wrapped = {new: kf.wrapped[new]}
        kf.rotation = None
        kf.write()
        if old_keyring and old_keyring != kf.slot.get("keyring"):
            keyring_delete(str(old_keyring))
    say(f"rotated to data key {new}: {report.databases} database(s) re-keyed, {report.files} file(s) re-sealed")
    return report


def _entry_version(entry: object) -> int:
    text = str(entry or "")
    tail = text.rsplit("-", 1)[-1]
    return int(tail) if text.count("-") >= 2 and tail.isdigit() else 1


def _rekey(db: Path, old: bytes, new: bytes) -> int:
    """Re-key one database from ``old`` to ``new``; 0 if it already had ``new`` (a resumed rotation)."""
    from plait.security.sqlcipher import open_encrypted, wrong_key
    from plait.store.database import connect

    if databases.is_plain_sqlite(db):
        return 0  # a database the author keeps unencrypted on purpose would not be under the home; leave it
    probe = connect(db, new)
    try:
        databases.integrity(probe)
        return 0  # re-keyed before an interruption
    except sqlite3.DatabaseError as exc:
        if not wrong_key(exc):
            raise
    finally:
        probe.close()
    conn = open_encrypted(str(db), old, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute(f"PRAGMA rekey = \"x'{new.hex()}'\"")
    finally:
        conn.close()
    check = connect(db, new)
    try:
        if databases.integrity(check) != "ok":
            raise DecryptError(f"{db} fails SQLite's integrity check after re-keying; restore it from a backup")
    finally:
        check.close()
    return 1
