"""Encryption at rest: sealed files, keys from PLAIT_KEY / a passphrase / the keyring, private modes, migrating an
unencrypted home after a verified backup, rotating the data key (resumed after an interruption at each step),
exporting, and the SQLCipher connection's errors caught as sqlite3's."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from plait.errors import StoreError
from plait.runtime import Runtime
from plait.security import crypto, keys
from plait.security.databases import fingerprint, is_plain_sqlite
from plait.security.keys import KEY_FILE, SecurityError, key_file
from plait.security.storage import read_bytes, write_bytes
from plait.settings import load_settings
from plait.store import Store
from plait.store.database import connect
from tests.cli import plait
from tests.fakes import fake_runtime
from tests.homes import open_db

KEY = os.urandom(32)


# -- the sealed-file format -----------------------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, crypto.SEGMENT - 1, crypto.SEGMENT, 2 * crypto.SEGMENT + 7])
def test_sealed_files_round_trip_at_segment_edges(size: int) -> None:
    data = os.urandom(size)
    sealed = crypto.seal(data, KEY, 3)
    assert crypto.sealed_key_id(sealed) == 3 and crypto.open_sealed(sealed, KEY) == data
    assert size < 16 or data[:64] not in sealed  # (a byte or two may occur in ciphertext by chance)


def test_a_changed_cut_or_foreign_sealed_file_is_refused() -> None:
    data = os.urandom(2 * crypto.SEGMENT + 100)
    sealed = crypto.seal(data, KEY, 1)
    flipped = bytearray(sealed)
    flipped[crypto.HEADER.size + 5] ^= 1
    last_segment_dropped = sealed[:crypto.HEADER.size + 2 * (crypto.SEGMENT + crypto.TAG)]
    for bad, key in ((bytes(flipped), KEY), (last_segment_dropped, KEY), (sealed, os.urandom(32)),
                     (sealed[:-1], KEY)):
        with pytest.raises(crypto.DecryptError):
            crypto.open_sealed(bad, key)
    header = bytearray(sealed)
    header[9:13] = (2).to_bytes(4, "big")  # the key id is bound to every segment
    with pytest.raises(crypto.DecryptError):
        crypto.open_sealed(bytes(header), KEY)


# -- keys -----------------------------------------------------------------------------------------

def test_a_new_home_is_encrypted_and_private(plait_home: Path) -> None:
    rt = Runtime(load_settings(home=plait_home))
    rt.store.query("SELECT 1")
    kf = key_file(plait_home)
    assert kf is not None and kf.encrypted and kf.slot["kind"] == "key"
    assert not is_plain_sqlite(plait_home / "plait.db")
    with pytest.raises(sqlite3.DatabaseError):  # standard SQLite cannot read it
        sqlite3.connect(plait_home / "plait.db").execute("SELECT * FROM sqlite_master").fetchall()
    assert stat.S_IMODE(plait_home.stat().st_mode) == 0o700
    for name in ("plait.db", "plait.db-wal", KEY_FILE):
        assert stat.S_IMODE((plait_home / name).stat().st_mode) == 0o600, name
    rt.close()


def test_wrong_or_missing_key_says_what_to_do(plait_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Store(plait_home / "plait.db").close()
    keys._loaded.clear()
    monkeypatch.setenv("PLAIT_KEY", "ab" * 32)
    with pytest.raises(SecurityError, match="wrong PLAIT_KEY"):
        Store(plait_home / "plait.db")
    monkeypatch.delenv("PLAIT_KEY")
    with pytest.raises(SecurityError, match="set PLAIT_KEY"):
        Store(plait_home / "plait.db")
    other = plait_home.parent / "other"
    with pytest.raises(SecurityError, match="no OS keyring"):
        Store(other / "plait.db")  # a new home needs a key source


def test_a_passphrase_home(plait_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_KEY", "correct horse battery staple")
    Store(plait_home / "plait.db").close()
    kf = key_file(plait_home)
    assert kf is not None and kf.slot["kind"] == "passphrase" and kf.slot["scrypt"]["n"] == 2**17
    keys._loaded.clear()
    monkeypatch.setenv("PLAIT_KEY", "correct horse battery stapler")
    with pytest.raises(SecurityError, match="does not open"):
        Store(plait_home / "plait.db")
    monkeypatch.setenv("PLAIT_KEY", "ab" * 32)
    with pytest.raises(SecurityError):  # a hex key for a passphrase home is just a wrong passphrase
        Store(plait_home / "plait.db")


class FakeKeyring:
    """An OS keyring in memory (keyring's backend interface)."""

    priority = 10

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        return self.items.get((service, user))

    def set_password(self, service: str, user: str, value: str) -> None:
        self.items[(service, user)] = value

    def delete_password(self, service: str, user: str) -> None:
        self.items.pop((service, user), None)


@pytest.fixture
def keyring_backend(monkeypatch: pytest.MonkeyPatch) -> FakeKeyring:
    import keyring
    from keyring.backend import KeyringBackend

    fake = FakeKeyring()
    backend = type("Fake", (KeyringBackend,), {"priority": 10, "get_password": lambda s, a, b: fake.get_password(a, b),
                                               "set_password": lambda s, a, b, c: fake.set_password(a, b, c),
                                               "delete_password": lambda s, a, b: fake.delete_password(a, b)})()
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    monkeypatch.delenv("PLAIT_KEY")
    yield fake
    keyring.set_keyring(previous)


def test_keyring_home_and_recovery_with_the_exported_key(plait_home: Path, keyring_backend: FakeKeyring,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plait(capsys, "security", "init")
    assert code == 0 and "OS keyring" in err
    kf = key_file(plait_home)
    assert kf is not None and kf.slot == {"kind": "key", "keyring": f"home-{kf.home_id}"}
    assert len(keyring_backend.items) == 1
    Store(plait_home / "plait.db").close()
    code, out, _ = plait(capsys, "security", "export", "--key")
    exported = out.strip()
    assert code == 0 and len(exported) == 64
    keyring_backend.items.clear()  # the keyring is lost
    keys._loaded.clear()
    with pytest.raises(SecurityError, match="OS keyring has no key"):
        Store(plait_home / "plait.db")
    monkeypatch.setenv("PLAIT_KEY", exported)
    Store(plait_home / "plait.db").close()


def test_sqlcipher_errors_are_caught_as_sqlite3_errors(tmp_path: Path) -> None:
    conn = connect(tmp_path / "x.db", KEY)
    conn.execute("CREATE TABLE t (x PRIMARY KEY)")
    conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELEC")


def test_status_reports_and_fixes_loose_permissions(plait_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rt = fake_runtime(plait_home)
    rt.close()
    os.chmod(plait_home, 0o755)
    (plait_home / "logs").mkdir(mode=0o755)
    os.chmod(plait_home / "logs", 0o755)
    (plait_home / "logs" / "access.log").write_text("x")
    os.chmod(plait_home / "logs" / "access.log", 0o644)
    code, out, _ = plait(capsys, "security", "status")
    assert code == 1 and "readable by others" in out and "state       encrypted" in out
    code, out, _ = plait(capsys, "security", "status", "--fix")
    assert code == 0 and "fixed       3 path(s)" in out
    assert stat.S_IMODE(plait_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((plait_home / "logs" / "access.log").stat().st_mode) == 0o600
    code, out, _ = plait(capsys, "security", "status")
    assert code == 0 and "nothing to fix" in out


# -- migrating an unencrypted home ------------------------------------------------------------------

def _plain_home(home: Path) -> Runtime:
    """A home as plait made them before encryption: plain SQLite, plain outputs and vector files, 0755/0644."""
    store = Store(home / "plait.db", key=None)
    store.close()
    os.chmod(home, 0o755)
    os.chmod(home / "plait.db", 0o644)
    rt = fake_runtime(home)
    with rt.store.transaction() as conn:
        conn.execute("INSERT INTO models VALUES ('memo', '{\"secret\": \"BLUEBIRD\"}', datetime('now'))")
    (home / "output" / "wf").mkdir(parents=True)
    (home / "output" / "wf" / "note.md").write_text("the BLUEBIRD plan")
    (home / "index" / "vectors").mkdir(parents=True)
    (home / "index" / "vectors" / "current.json").write_text("{}")
    tables = connect(home / "workflows" / "tables.db", None) if (home / "workflows").mkdir() is None else None
    assert tables is not None
    tables.execute("CREATE TABLE t (x)")
    tables.execute("INSERT INTO t VALUES ('BLUEBIRD row')")
    tables.close()
    return rt


def test_an_unencrypted_home_is_migrated_by_one_command_after_a_verified_backup(
        plait_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rt = _plain_home(plait_home)
    before = fingerprint(rt.store.connection)
    rt.close()
    assert key_file(plait_home) is None and is_plain_sqlite(plait_home / "plait.db")
    code, out, _ = plait(capsys, "security", "status")
    assert code == 1 and "not encrypted" in out
    backup = plait_home.parent / "backup"
    code, _, err = plait(capsys, "security", "init", "--backup", str(backup))
    assert code == 0, err
    assert "backup of the unencrypted home checked" in err and "UNENCRYPTED" in err
    assert not is_plain_sqlite(plait_home / "plait.db") and not is_plain_sqlite(plait_home / "workflows/tables.db")
    assert b"BLUEBIRD" not in (plait_home / "output/wf/note.md").read_bytes()
    assert read_bytes(plait_home / "output/wf/note.md") == b"the BLUEBIRD plan"
    assert not (plait_home / "index/vectors/current.json").exists()  # derived: rebuilt encrypted
    after = open_db(plait_home / "plait.db")
    assert fingerprint(after) == before
    after.close()
    # The backup is the unencrypted original, checked.
    assert is_plain_sqlite(backup / "plait.db") and (backup / "output/wf/note.md").read_text() == "the BLUEBIRD plan"
    code, out, _ = plait(capsys, "security", "status")
    assert code == 0 and "state       encrypted" in out and "loose" not in out
    assert not any(p.name.endswith(("-wal", "-shm", ".encrypting")) for p in plait_home.rglob("*"))


def test_an_interrupted_migration_is_finished_by_running_init_again(
        plait_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.security import databases, migrate

    _plain_home(plait_home).close()
    real_export = databases.export
    calls = {"n": 0}

    def crash_on_second(*args: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies while encrypting the second database
        real_export(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(databases, "export", crash_on_second)
    code, _, _ = plait(capsys, "security", "init", "--backup", str(plait_home.parent / "b1"))
    assert code == 130
    keys._loaded.clear()
    with pytest.raises(SecurityError, match="run `plait security init` to finish"):
        Store(plait_home / "plait.db")
    monkeypatch.setattr(databases, "export", real_export)
    code, _, err = plait(capsys, "security", "init")
    assert code == 0 and "resuming" in err, err
    assert migrate.databases.is_plain_sqlite(plait_home / "plait.db") is False
    db = open_db(plait_home / "workflows/tables.db")
    assert db.execute("SELECT x FROM t").fetchall() == [("BLUEBIRD row",)]
    assert read_bytes(plait_home / "output/wf/note.md") == b"the BLUEBIRD plan"


# -- rotation -------------------------------------------------------------------------------------

def _encrypted_home(home: Path) -> None:
    rt = fake_runtime(home)
    with rt.store.transaction() as conn:
        conn.execute("INSERT INTO models VALUES ('memo', '{\"x\": \"ROTATE\"}', datetime('now'))")
    write_bytes(home / "output" / "a.md", b"sealed text A")
    write_bytes(home / "output" / "b.md", b"sealed text B")
    rt.close()


@pytest.mark.parametrize("stop", ["key", "databases", "one-file", "files"])
def test_rotation_interrupted_at_any_step_resumes_and_loses_nothing(plait_home: Path, stop: str) -> None:
    from plait.security.rotation import rotate

    _encrypted_home(plait_home)
    old = key_file(plait_home)
    assert old is not None
    rotate(plait_home, say=lambda _: None, stop_after=stop)
    keys._loaded.clear()
    with pytest.raises(SecurityError, match="rotate-key"):
        Store(plait_home / "plait.db")
    report = rotate(plait_home, say=lambda _: None)
    assert report.resumed and report.new_key == 2
    kf = key_file(plait_home)
    assert kf is not None and kf.current == kf.database == 2 and list(kf.wrapped) == [2] and kf.rotation is None
    keys._loaded.clear()
    store = Store(plait_home / "plait.db")
    assert store.query("SELECT spec FROM models WHERE name = 'memo'")[0][0] == '{"x": "ROTATE"}'
    store.close()
    for name, text in (("a.md", b"sealed text A"), ("b.md", b"sealed text B")):
        assert crypto.sealed_key_id((plait_home / "output" / name).read_bytes()) == 2
        assert read_bytes(plait_home / "output" / name) == text
    old_key = keys.unwrap(bytes.fromhex("5e" * 32), old.wrapped[1], old.home_id, 1)
    with pytest.raises(StoreError):  # the old data key opens nothing any more
        bad = connect(plait_home / "plait.db", old_key)
        try:
            bad.execute("SELECT count(*) FROM models").fetchall()
        except sqlite3.DatabaseError as exc:
            raise StoreError(str(exc)) from exc


def test_rotation_with_a_new_master_key(plait_home: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _encrypted_home(plait_home)
    monkeypatch.setenv("PLAIT_NEW_KEY", "cd" * 32)
    code, _, err = plait(capsys, "security", "rotate-key", "--new-master")
    assert code == 0 and "PLAIT_KEY must be the new key" in err
    keys._loaded.clear()
    with pytest.raises(SecurityError):
        Store(plait_home / "plait.db")
    monkeypatch.setenv("PLAIT_KEY", "cd" * 32)
    Store(plait_home / "plait.db").close()


def test_rotation_refuses_while_plait_runs(plait_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _encrypted_home(plait_home)
    running = Store(plait_home / "plait.db")
    running.query("SELECT 1")
    code, _, err = plait(capsys, "security", "rotate-key")
    assert code == 7 and "while plait is running" in err
    running.close()
    code, _, err = plait(capsys, "security", "rotate-key")
    assert code == 0 and "rotated to data key 2" in err


def test_export_writes_an_unencrypted_copy(plait_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _encrypted_home(plait_home)
    dest = plait_home.parent / "export"
    code, _, err = plait(capsys, "security", "export", str(dest))
    assert code == 0 and "exported 1 database(s) and 2 file(s)" in err
    plain = sqlite3.connect(dest / "plait.db")
    assert plain.execute("SELECT spec FROM models WHERE name = 'memo'").fetchone() == ('{"x": "ROTATE"}',)
    assert (dest / "output" / "a.md").read_bytes() == b"sealed text A"
    code, out, _ = plait(capsys, "security", "export", "--file", str(plait_home / "output" / "b.md"))
    assert code == 0 and out == "sealed text B"
    code, _, err = plait(capsys, "security", "export", str(plait_home / "inside"))
    assert code == 7 and "outside the home" in err


def test_search_gives_the_same_results_on_an_encrypted_and_an_unencrypted_home(tmp_path: Path) -> None:
    from plait.index.core import Index
    from plait.security.keys import mark_plaintext
    from plait.tasks.search import search
    from tests.corpora import lee_articles, split_sentences

    docs = tmp_path / "docs"
    docs.mkdir()
    queries = []
    for i, article in enumerate(lee_articles()[:40]):
        first = split_sentences(article)[0]
        (docs / f"a{i}.txt").write_text(article[article.index(first) + len(first):])
        queries.append(first)
    found = {}
    for name in ("encrypted", "plain"):
        home = tmp_path / name
        if name == "plain":
            mark_plaintext(home)
        rt = fake_runtime(home)
        Index(rt).add([docs])
        found[name] = {mode: [[h.path for h in search(q, k=10, mode=mode, runtime=rt).hits] for q in queries]
                       for mode in ("keyword", "vector", "hybrid")}
        rt.close()
    assert is_plain_sqlite(tmp_path / "plain" / "plait.db") and not is_plain_sqlite(tmp_path / "encrypted" / "plait.db")
    assert found["encrypted"] == found["plain"]
