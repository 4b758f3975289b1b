"""`plait restore` never replaces a home a plait process has open, and loses nothing when it fails."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from plait.security.keys import SecurityError
from plait.store import backup as backup_module
from plait.store.backup import backup_home, restore_home
from plait.store.database import Store

DB = "plait.db"


def _rows(home: Path) -> list[str]:
    store = Store(home / DB)
    try:
        if not store.query("SELECT 1 FROM sqlite_master WHERE name = 't'"):
            return []
        return [r[0] for r in store.query("SELECT v FROM t")]
    finally:
        store.close()


def _backup(tmp_path: Path) -> Path:
    home = tmp_path / "source"
    store = Store(home / DB)
    with store.transaction() as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES ('from the backup')")
    backup_home(store, home, tmp_path / "backup")
    store.close()
    return tmp_path / "backup"


def _home_with_a_wal(home: Path) -> dict[str, bytes]:
    """A home whose last commit is only in its WAL, as a process killed before a checkpoint leaves it."""
    store = Store(home / DB)
    with store.transaction() as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.execute("INSERT INTO t VALUES ('only in the wal')")
    files = {name: (home / name).read_bytes() for name in (DB, DB + "-wal")}
    store.close()  # checkpoints and removes the WAL: put the files back as the killed process left them
    for name, data in files.items():
        (home / name).write_bytes(data)
    assert files[DB + "-wal"]
    return files


def test_a_home_open_in_another_plait_process_is_not_restored(tmp_path: Path) -> None:
    saved = _backup(tmp_path)
    home = tmp_path / "home"
    _home_with_a_wal(home)
    server = Store(home / DB)  # `plait serve` or `plait index add`: no workflow lock, the home is in use
    try:
        with pytest.raises(SecurityError, match="cannot restore a backup while plait is running"):
            restore_home(saved, home, force=True)
        assert [r[0] for r in server.query("SELECT v FROM t")] == ["only in the wal"]
    finally:
        server.close()
    restore_home(saved, home, force=True)  # once it has stopped
    assert _rows(home) == ["from the backup"]


def test_a_failed_restore_keeps_the_commits_in_the_homes_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved = _backup(tmp_path)
    home = tmp_path / "home"
    files = _home_with_a_wal(home)

    def full_disk(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(backup_module, "copy_database", full_disk)
        with pytest.raises(OSError, match="No space left"):
            restore_home(saved, home, force=True)
    assert (home / (DB + "-wal")).read_bytes() == files[DB + "-wal"]
    assert _rows(home) == ["only in the wal"]

    for name, data in files.items():  # the killed process's WAL again: it must not be replayed over the backup
        (home / name).write_bytes(data)
    restore_home(saved, home, force=True)
    assert not (home / (DB + "-wal")).exists()
    assert _rows(home) == ["from the backup"]
    store = Store(home / DB)
    try:
        assert store.query("PRAGMA integrity_check")[0][0] == "ok"
    finally:
        store.close()
