"""The keys of an encrypted plait home: where the master key comes from, and the data keys it protects.

Envelope encryption, as disk encryption does it: random 256-bit *data keys* encrypt the database
(SQLCipher) and the files plait keeps (:mod:`plait.security.crypto`); they are stored in
``$PLAIT_HOME/security.json`` only wrapped (AES-256-GCM) under a *master key* that never touches the
disk. The master key is, in this order:

1. ``PLAIT_KEY``: 64 hex characters are a 256-bit key used as is (``openssl rand -hex 32``); anything
   else is a passphrase, stretched with scrypt (N=2^17, r=8, p=1, OWASP's recommendation) and a
   per-home salt;
2. the OS keyring (``keyring``: macOS Keychain, Windows Credential Locker, Secret Service/KWallet), where
   ``plait security init`` puts a random 256-bit key on a desktop;
3. a passphrase typed at the terminal, for a passphrase home.

A home whose master is a 256-bit key accepts it from the keyring or from ``PLAIT_KEY`` as hex, so the
key printed by ``plait security export --key`` recovers a home whose keyring was lost. Changing the
master only re-wraps the data keys; rotating a data key re-encrypts the data
(:mod:`plait.security.rotation`).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from plait.errors import PlaitError
from plait.security.deps import require_crypto, require_sqlcipher

KEY_FILE = "security.json"
ENV_KEY = "PLAIT_KEY"
KEYRING_SERVICE = "plait"
FORMAT = 1
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
SlotKind = Literal["key", "passphrase"]


class SecurityError(PlaitError):
    """The home's key is missing or wrong, or its key file is damaged."""

    exit_code = 7


# -- the master key -------------------------------------------------------------------------------

def keyring_usable() -> bool:
    """Whether an OS keyring is there: not keyring's fail backend, nor one storing keys in plain files."""
    try:
        import keyring
    except ImportError:
        return False
    try:
        backend = keyring.get_keyring()
        # Secret Service, macOS and Windows have priority 5 (KWallet 4.9); the fail backend 0, and
        # keyrings.alt's plain-file ones below 1: those would keep the key beside the data it protects.
        return float(getattr(backend, "priority", 0)) >= 1
    except Exception:  # noqa: BLE001 - a broken keyring setup is no keyring
        return False


def keyring_entry(home_id: str, version: int = 1) -> str:
    """The keyring entry of a home's master key; a new master gets a new entry, so the old one stays until
    the key file no longer needs it."""
    return f"home-{home_id}" + (f"-{version}" if version > 1 else "")


def keyring_get(entry: str) -> bytes | None:
    if not keyring_usable():
        return None
    import keyring

    try:
        value = keyring.get_password(KEYRING_SERVICE, entry)
    except Exception as exc:  # noqa: BLE001 - a locked or broken keyring: say so, do not guess
        raise SecurityError(f"the OS keyring did not give plait's key ({exc}); unlock it, or set PLAIT_KEY to the "
                            "key from `plait security export --key`") from exc
    return bytes.fromhex(value) if value and _HEX_KEY.match(value) else None


def keyring_put(entry: str, key: bytes) -> None:
    import keyring

    try:
        keyring.set_password(KEYRING_SERVICE, entry, key.hex())
    except Exception as exc:  # noqa: BLE001
        raise SecurityError(f"cannot store plait's key in the OS keyring ({exc}); set PLAIT_KEY instead") from exc


def keyring_delete(entry: str) -> None:
    import keyring

    try:
        keyring.delete_password(KEYRING_SERVICE, entry)
    except Exception:  # noqa: BLE001, S110 - already gone
        pass


def _scrypt(passphrase: str, params: dict[str, Any]) -> bytes:
    require_crypto()
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    kdf = Scrypt(salt=base64.b64decode(params["salt"]), length=32, n=int(params["n"]), r=int(params["r"]),
                 p=int(params["p"]))
    derived: bytes = kdf.derive(passphrase.encode("utf-8"))
    return derived


def new_scrypt_params() -> dict[str, Any]:
    return {"salt": base64.b64encode(os.urandom(16)).decode(), "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P}


@dataclass(frozen=True)
class Master:
    """A master key, how to store it in the key file, and where it came from (for `plait security status`)."""

    key: bytes
    slot: dict[str, Any]
    source: str


def master_from_env(slot: dict[str, Any] | None = None) -> Master | None:
    """The master key from PLAIT_KEY, shaped for ``slot`` (or for a new home when None)."""
    value = os.environ.get(ENV_KEY, "")
    if not value:
        return None
    if slot is None:
        if _HEX_KEY.match(value.strip()):
            return Master(bytes.fromhex(value.strip()), {"kind": "key", "keyring": False}, ENV_KEY)
        if len(value) < 8:
            raise SecurityError("PLAIT_KEY is too short for a passphrase: use at least 8 characters (a few words), "
                                "or 64 hex characters from `openssl rand -hex 32`")
        params = new_scrypt_params()
        return Master(_scrypt(value, params), {"kind": "passphrase", "scrypt": params}, ENV_KEY + " (passphrase)")
    if slot["kind"] == "key":
        if not _HEX_KEY.match(value.strip()):
            raise SecurityError("this home's master is a 256-bit key: PLAIT_KEY must be its 64 hex characters "
                                "(from `plait security export --key`), not a passphrase")
        return Master(bytes.fromhex(value.strip()), slot, ENV_KEY)
    return Master(_scrypt(value, slot["scrypt"]), slot, ENV_KEY + " (passphrase)")


def prompt_passphrase(*, confirm: bool) -> str | None:
    if not sys.stdin.isatty():
        return None
    import getpass

    first = getpass.getpass("plait passphrase: ")
    if confirm:
        if len(first) < 8:
            raise SecurityError("the passphrase needs at least 8 characters (a few words are best)")
        if getpass.getpass("again: ") != first:
            raise SecurityError("the two passphrases differ; nothing was changed")
    return first


def open_master(slot: dict[str, Any], home_id: str, home: Path) -> Master:
    """The master key of an existing home, from PLAIT_KEY, the keyring or a typed passphrase."""
    found = master_from_env(slot)
    if found:
        return found
    if slot["kind"] == "key":
        key = keyring_get(str(slot["keyring"])) if slot.get("keyring") else None
        if key is not None:
            return Master(key, slot, "OS keyring")
        where = "the OS keyring has no key for it" if slot.get("keyring") else "its key was given as PLAIT_KEY"
        raise SecurityError(f"plait's home {home} is encrypted and {where}; set PLAIT_KEY to its 64-hex-character key "
                            "(`plait security export --key` prints it where the key is known)")
    passphrase = prompt_passphrase(confirm=False)
    if passphrase is None:
        raise SecurityError(f"plait's home {home} is encrypted with a passphrase: set PLAIT_KEY to it, or run "
                            "plait in a terminal to type it")
    return Master(_scrypt(passphrase, slot["scrypt"]), slot, "typed passphrase")


def new_master(*, passphrase: str | None = None, use_keyring: bool | None = None) -> Master:
    """A master key for a new home: a given passphrase, PLAIT_KEY, else a random key kept in the keyring."""
    if passphrase is not None:
        params = new_scrypt_params()
        return Master(_scrypt(passphrase, params), {"kind": "passphrase", "scrypt": params}, "typed passphrase")
    if use_keyring is not True:
        found = master_from_env()
        if found:
            return found
    if use_keyring is not False and keyring_usable():
        # The entry's name is filled in when the home's id is known (create_home_keys).
        return Master(secrets.token_bytes(32), {"kind": "key", "keyring": "new"}, "OS keyring")
    if use_keyring is None and sys.stdin.isatty():
        print("plait encrypts what it keeps, and this machine has no OS keyring for its key: choose a passphrase "
              "(PLAIT_KEY set to it spares typing it again)", file=sys.stderr)
        typed = prompt_passphrase(confirm=True)
        if typed:
            return new_master(passphrase=typed)
    raise SecurityError("plait encrypts its home and needs a key, but this machine has no OS keyring: set PLAIT_KEY "
                        "(a passphrase of a few words, or `openssl rand -hex 32`) and keep it safe, or run "
                        "`plait security init` to type a passphrase")


# -- wrapping data keys ---------------------------------------------------------------------------

def _aad(home_id: str, key_id: int) -> bytes:
    return f"plait data key {home_id} {key_id}".encode()


def wrap(master: bytes, data_key: bytes, home_id: str, key_id: int) -> str:
    require_crypto()
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(master).encrypt(nonce, data_key, _aad(home_id, key_id))).decode()


def unwrap(master: bytes, wrapped: str, home_id: str, key_id: int) -> bytes:
    require_crypto()
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.b64decode(wrapped)
    try:
        key: bytes = AESGCM(master).decrypt(raw[:12], raw[12:], _aad(home_id, key_id))
    except InvalidTag as exc:
        raise SecurityError("the key does not open this plait home (wrong PLAIT_KEY or passphrase)") from exc
    return key


# -- the key file ---------------------------------------------------------------------------------

@dataclass
class KeyFile:
    """``security.json``: whether the home is encrypted and its wrapped data keys. Never holds a usable key."""

    path: Path
    encrypted: bool
    home_id: str = ""
    slot: dict[str, Any] = field(default_factory=dict)
    wrapped: dict[int, str] = field(default_factory=dict)
    current: int = 0  # the data key new files are sealed with
    database: int = 0  # the data key the database is encrypted with
    rotation: dict[str, Any] | None = None  # {"to": id, "from": id, "started_at": t} while one is unfinished
    created_at: float = 0.0

    @classmethod
    def read(cls, path: Path) -> KeyFile | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SecurityError(f"{path} is unreadable ({exc}); restore it from a backup: without it the encrypted "
                                "data cannot be read") from exc
        if raw.get("format") != FORMAT:
            raise SecurityError(f"{path} has format {raw.get('format')}, which this plait does not know; upgrade plait")
        return cls(path, bool(raw["encrypted"]), raw.get("home_id", ""), raw.get("slot", {}),
                   {int(k): v for k, v in raw.get("data_keys", {}).items()}, int(raw.get("current", 0)),
                   int(raw.get("database", 0)), raw.get("rotation"), float(raw.get("created_at", 0)))

    def write(self) -> None:
        from plait.security.crypto import write_file_atomic

        data = {"format": FORMAT, "encrypted": self.encrypted, "home_id": self.home_id, "slot": self.slot,
                "data_keys": {str(k): v for k, v in sorted(self.wrapped.items())}, "current": self.current,
                "database": self.database, "rotation": self.rotation, "created_at": self.created_at}
        write_file_atomic(self.path, (json.dumps(data, indent=1) + "\n").encode())
        _forget(self.path.parent)


@dataclass
class HomeKeys:
    """The unwrapped data keys of one encrypted home, for this process."""

    home: Path
    file: KeyFile
    keys: dict[int, bytes]
    master_source: str

    @property
    def current(self) -> int:
        return self.file.current

    @property
    def database_key(self) -> bytes:
        return self.keys[self.file.database]

    def seal(self, plaintext: bytes) -> bytes:
        from plait.security.crypto import seal

        return seal(plaintext, self.keys[self.current], self.current)

    def open(self, sealed: bytes, *, what: str = "the file") -> bytes:
        from plait.security.crypto import DecryptError, open_sealed, sealed_key_id

        key_id = sealed_key_id(sealed)
        if key_id is None or key_id not in self.keys:
            raise DecryptError(f"{what} was not encrypted with a key of this plait home")
        return open_sealed(sealed, self.keys[key_id], what=what)


_loaded: dict[Path, tuple[int, HomeKeys]] = {}
_loaded_lock = threading.Lock()


def _forget(home: Path) -> None:
    with _loaded_lock:
        _loaded.pop(home.resolve(), None)


def key_file(home: Path) -> KeyFile | None:
    return KeyFile.read(home / KEY_FILE)


def load_home_keys(home: Path, *, master: Master | None = None) -> HomeKeys | None:
    """The data keys of ``home`` (None if it is not encrypted), unwrapped once per process."""
    path = home / KEY_FILE
    resolved = home.resolve()
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        return None
    with _loaded_lock:
        cached = _loaded.get(resolved)
        if cached and cached[0] == stamp and master is None:
            return cached[1]
    kf = KeyFile.read(path)
    if kf is None or not kf.encrypted:
        return None
    master = master or open_master(kf.slot, kf.home_id, home)
    keys = {key_id: unwrap(master.key, wrapped, kf.home_id, key_id) for key_id, wrapped in kf.wrapped.items()}
    found = HomeKeys(home, kf, keys, master.source)
    with _loaded_lock:
        _loaded[resolved] = (stamp, found)
    return found


def create_home_keys(home: Path, master: Master) -> HomeKeys:
    """Set up encryption for a home that has none: one data key, wrapped under ``master``."""
    require_sqlcipher()
    from plait.security.permissions import private_dir

    private_dir(home)
    home_id = secrets.token_hex(8)
    data_key = secrets.token_bytes(32)
    slot = dict(master.slot)
    if slot.get("kind") == "key" and slot.get("keyring"):
        slot["keyring"] = keyring_entry(home_id)
        keyring_put(slot["keyring"], master.key)
    kf = KeyFile(home / KEY_FILE, True, home_id, slot, {1: wrap(master.key, data_key, home_id, 1)}, 1, 1, None,
                 time.time())
    kf.write()
    keys = load_home_keys(home, master=master)
    assert keys is not None
    return keys


def mark_plaintext(home: Path) -> None:
    """Record that ``home`` is kept unencrypted on purpose (`plait security init --no-encryption`)."""
    from plait.security.permissions import private_dir

    private_dir(home)
    KeyFile(home / KEY_FILE, False, created_at=time.time()).write()


# -- what the database and files use --------------------------------------------------------------

DATABASE_FILE = "plait.db"


def database_key(db_path: Path) -> bytes | None:
    """The key of the database at ``db_path`` (None: plain SQLite), setting up encryption for a new home.

    A home is the database's folder. A new one (no database, no key file) is encrypted by default; a
    database made before plait encrypted homes stays readable as it is until `plait security init`.
    """
    home = db_path.parent
    kf = key_file(home)
    if kf is None:
        if db_path.exists():
            return None  # an unencrypted home from before; `plait security status` says how to encrypt it
        keys = create_home_keys(home, new_master())
        return keys.database_key
    if not kf.encrypted:
        return None
    if kf.rotation is not None:
        if kf.rotation.get("migration"):
            raise SecurityError(f"encrypting {home} was interrupted; run `plait security init` to finish it (the "
                                f"backup made first is in {kf.rotation.get('backup')})")
        raise SecurityError(f"a key rotation of {home} was interrupted; run `plait security rotate-key` to finish it "
                            "(nothing is lost: every file is readable with the keys kept until then)")
    loaded = load_home_keys(home)
    assert loaded is not None
    return loaded.database_key


def home_of(path: Path) -> Path | None:
    """The plait home (a folder with a key file) that ``path`` is inside, if any."""
    for parent in Path(os.path.abspath(path)).parents:
        if (parent / KEY_FILE).is_file():
            return parent
    return None


def keys_for(path: Path) -> HomeKeys | None:
    """The keys that protect files at ``path``: those of the encrypted home it is in, else None."""
    home = home_of(path)
    return load_home_keys(home) if home is not None else None


def sqlite_key_for(path: Path) -> bytes | None:
    """The SQLCipher key for another SQLite file plait keeps at ``path`` (a workflow's tables): the database
    key of the encrypted home it is in, or None (plain SQLite) outside one."""
    keys = keys_for(path)
    return keys.database_key if keys is not None else None
