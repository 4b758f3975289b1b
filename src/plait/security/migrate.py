"""Encrypting a home that plait kept unencrypted, in one command, after a verified backup.

``plait security init`` on such a home:

1. takes the home's lock alone (no other plait process may run);
2. copies every database (SQLite's backup API: a consistent snapshot, WAL included) and every personal
   file to a backup folder beside the home, and checks the copy: each database passes SQLite's integrity
   check and holds the same rows (:func:`~plait.security.databases.fingerprint`), each file the same
   SHA-256;
3. records in ``security.json`` that a migration is under way (so a crash is resumed, never mistaken
   for a finished home), exports each database to an encrypted copy, checks it row by row against the
   original, and swaps it in; seals the workflow outputs; drops the vector index files (derived: they are
   rebuilt, encrypted, from the database on the next search);
4. marks the home encrypted.

Run again after a crash, it resumes where it stopped: a database already encrypted is kept, a file
already sealed is skipped. The backup stays (it is the unencrypted data): the command prints where, to
be deleted once the owner is satisfied.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from plait.security import databases
from plait.security.crypto import is_sealed, write_file_atomic
from plait.security.homelock import HomeLock
from plait.security.keys import (
    KEY_FILE,
    KeyFile,
    Master,
    SecurityError,
    create_home_keys,
    key_file,
    load_home_keys,
    open_master,
)
from plait.security.permissions import check, private_dir
from plait.security.permissions import fix as tighten

# Files plait keeps that hold personal data, besides databases: what workflows wrote into the home.
SEALED_FOLDERS = ("output",)
DERIVED_FOLDERS = ("index/vectors",)  # rebuilt from the database, so removed rather than converted


@dataclass
class MigrationReport:
    home: Path
    backup: Path | None
    databases: list[str] = field(default_factory=list)
    sealed_files: int = 0
    removed_derived: int = 0
    resumed: bool = False
    tightened: int = 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def personal_files(home: Path) -> list[Path]:
    found = []
    for folder in SEALED_FOLDERS:
        base = home / folder
        if base.is_dir():
            found += [p for p in sorted(base.rglob("*")) if p.is_file() and not p.is_symlink()
                      and not p.name.endswith(".db")]
    return found


def backup(home: Path, dest: Path, say: Callable[[str], None]) -> None:
    """Copy the home's databases and personal files to ``dest`` and check the copy (raises if it differs)."""
    from plait.store.database import connect

    if dest.exists():
        raise SecurityError(f"the backup folder {dest} exists already; move it away or give --backup elsewhere")
    private_dir(dest)
    for db in databases.sqlite_files(home):
        target = dest / db.relative_to(home)
        private_dir(target.parent)
        source = connect(db, None)
        copy = connect(target, None)
        try:
            source.backup(copy)  # SQLite's online backup: consistent even with a WAL beside the file
        finally:
            copy.close()
            source.close()
        databases.check_copy(db, None, target, None)
    for path in personal_files(home):
        target = dest / path.relative_to(home)
        private_dir(target.parent)
        shutil.copy2(path, target)
        if _sha256(target) != _sha256(path):
            raise SecurityError(f"the backup of {path} differs from the original; nothing was changed")
    say(f"backup of the unencrypted home checked: {dest}")


def migrate(home: Path, master: Master | None, *, backup_to: Path | None = None,
            say: Callable[[str], None] = print) -> MigrationReport:
    """Encrypt the unencrypted home ``home`` (see the module docstring); ``master`` for a fresh start."""
    with HomeLock.exclusive(home, "encrypt the home"):
        kf = key_file(home)
        resumed = kf is not None and kf.encrypted and kf.rotation is not None and kf.rotation.get("migration")
        report = MigrationReport(home, None, resumed=bool(resumed))
        if kf is not None and kf.encrypted and not resumed:
            raise SecurityError(f"{home} is encrypted already; see `plait security status`")
        if resumed:
            assert kf is not None
            master = open_master(kf.slot, kf.home_id, home)
            report.backup = Path(kf.rotation["backup"]) if kf.rotation and kf.rotation.get("backup") else None
            say("resuming the migration that was interrupted")
        else:
            if master is None:
                raise SecurityError("no master key given")
            stamp = time.strftime("%Y%m%d-%H%M%S")
            report.backup = backup_to or home.with_name(f"{home.name}-unencrypted-backup-{stamp}")
            for db in databases.sqlite_files(home):
                databases.checkpoint(db, None)
            backup(home, report.backup, say)
            (home / KEY_FILE).unlink(missing_ok=True)  # a `--no-encryption` marker
            keys = create_home_keys(home, master)
            keys.file.rotation = {"migration": True, "backup": str(report.backup), "started_at": time.time()}
            keys.file.write()
        keys_now = load_home_keys(home, master=master)
        assert keys_now is not None
        db_key = keys_now.database_key
        for db in list(databases.sqlite_files(home)):
            if not databases.is_plain_sqlite(db):
                continue  # encrypted before the interruption
            databases.checkpoint(db, None)
            tmp = db.with_name(db.name + ".encrypting")
            databases.export(db, None, tmp, db_key)
            databases.checkpoint(db, None)  # no WAL of the plain file may stay beside the encrypted one
            databases.checkpoint(tmp, db_key)
            os.replace(tmp, db)
            report.databases.append(str(db.relative_to(home)))
        for path in personal_files(home):
            data = path.read_bytes()
            if is_sealed(data):
                continue
            write_file_atomic(path, keys_now.seal(data))
            report.sealed_files += 1
        for folder in DERIVED_FOLDERS:
            base = home / folder
            if base.is_dir():
                for path in base.iterdir():
                    if path.is_file():
                        path.unlink()
                        report.removed_derived += 1
        final = KeyFile.read(home / KEY_FILE)
        assert final is not None
        final.rotation = None
        final.write()
        report.tightened = tighten(check(home))  # an older plait made folders 0755 and files 0644
    say(f"encrypted {len(report.databases)} database(s) and {report.sealed_files} file(s); "
        f"{report.removed_derived} vector index file(s) removed, rebuilt encrypted on the next search; "
        f"{report.tightened} path(s) made private")
    return report
