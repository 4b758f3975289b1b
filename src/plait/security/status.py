"""What `plait security status` reports: encryption, keys, files left in the clear, permissions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from plait.security import databases
from plait.security.keys import key_file, keyring_usable
from plait.security.migrate import personal_files
from plait.security.permissions import Loose, check


@dataclass
class SecurityStatus:
    home: str
    state: str  # encrypted | unencrypted (chosen) | unencrypted (from before) | new
    master: str | None = None  # key from keyring / PLAIT_KEY, or passphrase
    data_key: int | None = None
    created_at: float | None = None
    unfinished: str | None = None  # an interrupted rotation or migration
    keyring: bool = False
    databases: dict[str, str] = field(default_factory=dict)  # relative path → encrypted | plain
    plain_files: list[str] = field(default_factory=list)  # personal files not sealed in an encrypted home
    loose: list[str] = field(default_factory=list)
    fixed: int = 0

    @property
    def problems(self) -> list[str]:
        out = []
        if self.state.startswith("unencrypted (from before"):
            out.append("the home is not encrypted: `plait security init` encrypts it (after a verified backup)")
        if self.unfinished:
            out.append(self.unfinished)
        if self.state == "encrypted":
            plain = [p for p, s in self.databases.items() if s == "plain"]
            if plain:
                out.append(f"database(s) not encrypted: {', '.join(plain)}")
            if self.plain_files:
                out.append(f"{len(self.plain_files)} personal file(s) not encrypted (e.g. {self.plain_files[0]}); "
                           "`plait security init` seals them")
        if self.loose:
            out.append(f"{len(self.loose)} path(s) readable by others: `plait security status --fix` tightens them")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "problems": self.problems}


def security_status(home: Path, *, fix: bool = False) -> SecurityStatus:
    kf = key_file(home)
    db = home / "plait.db"
    if kf is None:
        state = "unencrypted (from before plait encrypted homes)" if db.exists() else "new"
    elif not kf.encrypted:
        state = "unencrypted (chosen with --no-encryption)"
    else:
        state = "encrypted"
    status = SecurityStatus(str(home), state, keyring=keyring_usable())
    if kf is not None and kf.encrypted:
        slot = kf.slot
        status.master = ("256-bit key in the OS keyring" if slot.get("keyring") else "256-bit key (PLAIT_KEY)") \
            if slot.get("kind") == "key" else "passphrase (scrypt)"
        status.data_key, status.created_at = kf.current, kf.created_at
        if kf.rotation is not None:
            status.unfinished = ("encrypting the home was interrupted: run `plait security init`" if
                                 kf.rotation.get("migration") else
                                 "a key rotation was interrupted: run `plait security rotate-key`")
        for path in personal_files(home):
            with open(path, "rb") as fh:
                if fh.read(8) != b"PLAITENC":
                    status.plain_files.append(str(path.relative_to(home)))
    for found in databases.sqlite_files(home) if home.is_dir() else []:
        status.databases[str(found.relative_to(home))] = "plain" if databases.is_plain_sqlite(found) else "encrypted"
    loose: list[Loose] = check(home)
    if fix and loose:
        from plait.security.permissions import fix as tighten

        status.fixed = tighten(loose)
        loose = check(home)
    status.loose = [str(item) for item in loose]
    return status
