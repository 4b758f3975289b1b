"""`plait backup` and `plait restore`: a consistent copy of a plait home, taken while plait runs.

A backup is a folder:

- ``plait.db``: SQLite's online backup of the live database (``Connection.backup``), one consistent
  snapshot even while a workflow or ``plait index add`` is writing. The copy is opened with the same key
  as the original (:func:`~plait.store.database.connect`), so an encrypted database stays encrypted.
- every other SQLite database plait keeps in its home (the table sink's ``workflows/tables.db``), the same way;
- the files plait made: models it built or tuned (``models/``), workflow outputs (``output/``), reports,
  training runs, enabled workflows, ``config.toml``, the local API key and, for an encrypted home, its key
  file ``security.json`` (data keys wrapped under the master key, which is never on disk: restoring needs
  the same ``PLAIT_KEY``, keyring entry or passphrase); both kept private, mode 0600;
- ``manifest.json``: plait's version, the schema migrations, and a SHA-256 of every file.

The backup folder is made readable by its owner only (mode 0700).

Not copied: the vector index (derived from the database, rebuilt on first search), logs, and model files
that live outside the home (``plait models add`` keeps their path; the manifest lists them).

The database is copied before the files, so the files are as new as the database or newer: every effect
the workflow ledger records is in the backup, and an effect newer than the ledger is redone harmlessly.
Restoring checks every hash and the database's integrity before it replaces anything, and refuses a
home that is in use (it takes the home's lock alone: :mod:`plait.security.homelock`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from plait.errors import InputError, StoreError
from plait.security.databases import file_key
from plait.security.keys import KEY_FILE
from plait.store.database import Store, connect

MANIFEST = "manifest.json"
DATABASE = "plait.db"
# Folders and files of a home that are copied as files; SQLite databases inside them are backed up as databases.
FOLDERS = ("models", "output", "reports", "runs", "workflows")
FILES = ("config.toml", "local.key", "security.json")
PRIVATE = ("local.key", "security.json")
SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal")
# Files being written at the moment of the backup (sinks write to a hidden name, then rename).
IN_FLIGHT_SUFFIXES = (".tmp", ".moving", ".copying", ".restoring")


@dataclass
class BackupReport:
    path: Path
    files: int = 0
    bytes: int = 0
    databases: list[str] = field(default_factory=list)
    external_models: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _is_database(path: Path) -> bool:
    """A SQLite database plait keeps: plain ones by their header, encrypted ones (no header) by name."""
    from plait.security.databases import is_plain_sqlite

    return is_plain_sqlite(path) or path.suffix == ".db"


def _open(path: Path, key: bytes | None = None) -> sqlite3.Connection:
    return connect(path, key if key is not None else file_key(path), timeout=30)


def copy_database(source: sqlite3.Connection, target: Path, key: bytes | None) -> None:
    """SQLite's online backup of an open connection into a new file (one consistent snapshot), encrypted
    with ``key`` like its source (SQLCipher backs up only between connections with the same key)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    dest = connect(target, key, timeout=30)
    try:
        source.backup(dest)  # all pages in one step: a consistent snapshot
        dest.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
    finally:
        dest.close()


def backup_home(store: Store, home: Path, dest: Path, *, progress: Callable[[str], None] | None = None,
                ) -> BackupReport:
    """Copy the home of ``store`` into the new folder ``dest``."""
    from plait import __version__
    from plait.store.migrations import MIGRATIONS

    start = time.perf_counter()
    dest = dest.expanduser().absolute()
    if dest.exists() and any(dest.iterdir()):
        raise InputError(f"{dest} is not empty; give a new folder for the backup")
    if home.resolve() in (dest.resolve(), *dest.resolve().parents):
        raise InputError(f"{dest} is inside plait's home {home}; put the backup somewhere else")
    dest.mkdir(parents=True, exist_ok=True)
    os.chmod(dest, 0o700)  # a backup holds personal mail, notes and key hashes: its owner's only
    report = BackupReport(dest)
    (progress or (lambda _: None))("database")
    copy_database(store.connection, dest / DATABASE, store.key)
    report.databases.append(DATABASE)
    for name in FOLDERS:
        folder = home / name
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(home)
            if not path.is_file() or path.name.endswith(SKIPPED_SUFFIXES) or (
                    path.name.startswith(".") and path.name.endswith(IN_FLIGHT_SUFFIXES)):
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if _is_database(path):
                key = file_key(path)
                source = connect(path, key, timeout=30)
                try:
                    copy_database(source, target, key)
                finally:
                    source.close()
                report.databases.append(str(rel))
            else:
                try:
                    shutil.copy2(path, target)
                except FileNotFoundError:  # removed or renamed since listed: not part of this backup
                    continue
    for name in FILES:
        if (home / name).is_file():
            shutil.copy2(home / name, dest / name)
    for name in PRIVATE:
        if (dest / name).exists():
            os.chmod(dest / name, 0o600)
    report.external_models = _external_models(store, home)
    files = {}
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        files[str(path.relative_to(dest))] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
        report.files += 1
        report.bytes += path.stat().st_size
    manifest = {"plait": __version__, "made_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "home": str(home),
                "migrations": [name for name, _ in MIGRATIONS], "databases": report.databases,
                "external_models": report.external_models, "files": files}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    report.seconds = time.perf_counter() - start
    return report


def _external_models(store: Store, home: Path) -> list[str]:
    """Files of the user's own models that live outside the home (not copied)."""
    out = []
    for (spec,) in store.query("SELECT spec FROM models"):
        source = json.loads(spec).get("source", "")
        if source.startswith("/") and not Path(source).is_relative_to(home):
            out.append(source)
    return out


def check_backup(backup: Path) -> dict[str, object]:
    """The manifest of a backup whose files are all there, unchanged, and whose databases are sound."""
    manifest_path = backup / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"{backup} is not a plait backup (no {MANIFEST}); give the folder `plait backup` made")
    manifest: dict[str, object] = json.loads(manifest_path.read_text())
    files = manifest.get("files")
    assert isinstance(files, dict)
    for rel, meta in files.items():
        path = backup / rel
        if not path.is_file() or _sha256(path) != meta["sha256"]:
            raise StoreError(f"the backup {backup} is damaged: {rel} is missing or changed since the backup was made")
    databases = manifest.get("databases", [])
    assert isinstance(databases, list)
    for rel in databases:
        conn = _open(backup / str(rel))
        try:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            result = str(exc)
        finally:
            conn.close()
        if result != "ok":
            raise StoreError(f"the backup {backup} is damaged: {rel} fails SQLite's integrity check ({result})")
    return manifest


def _release_locks(db: Path, key: bytes | None) -> None:
    """The workflows a backup caught running were running elsewhere: the restored home holds no lock."""
    conn = connect(db, key, timeout=30)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "workflow_locks" in tables:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE workflow_runs SET status = 'interrupted' WHERE status = 'running'")
            conn.execute("DELETE FROM workflow_locks")
            conn.execute("COMMIT")
    finally:
        conn.close()


def restore_home(backup: Path, home: Path, *, force: bool = False) -> dict[str, object]:
    """Replace ``home``'s database and files with the backup's. The vector index is rebuilt on first use."""
    from plait.security.homelock import HomeLock

    backup = backup.expanduser().absolute()
    manifest = check_backup(backup)
    if (home / DATABASE).exists() and not force:
        raise InputError(f"{home} already has a database; restoring replaces it: add --force to do that "
                         "(back it up first with `plait backup`)")
    home.mkdir(parents=True, exist_ok=True)
    # Every plait process (server, `plait up`, `plait index add`, a workflow run) holds the home's lock
    # shared while its database is open: holding it alone, nothing can write to the files replaced here.
    with HomeLock.exclusive(home, "restore a backup"):
        _replace_home(backup, home)
    return manifest


def _replace_home(backup: Path, home: Path) -> None:
    staged = home / f".{DATABASE}.restoring"
    staged.unlink(missing_ok=True)
    key = file_key(backup / DATABASE)  # the backup's own key file opens it
    source = connect(backup / DATABASE, key, timeout=30)
    try:
        copy_database(source, staged, key)
    finally:
        source.close()
    _release_locks(staged, key)
    # The key file that opens the restored database goes in just before it does.
    if (backup / KEY_FILE).is_file():
        shutil.copy2(backup / KEY_FILE, home / KEY_FILE)
    # The old WAL would be replayed over the restored file, so it goes, but only now: until the staged
    # copy is complete, the current home (with commits still only in its WAL) stays whole.
    for suffix in SKIPPED_SUFFIXES:
        (home / (DATABASE + suffix)).unlink(missing_ok=True)
    os.replace(staged, home / DATABASE)
    for name in FOLDERS:
        if (backup / name).is_dir():
            target = home / name
            if target.is_symlink():
                target.unlink()
            elif target.exists():
                shutil.rmtree(target)
            shutil.copytree(backup / name, target)
    for name in FILES:
        if (backup / name).is_file():
            shutil.copy2(backup / name, home / name)
    shutil.rmtree(home / "index" / "vectors", ignore_errors=True)  # rebuilt from the restored database
