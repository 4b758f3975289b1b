"""The optional libraries encryption needs, imported with a message that says what to install."""

from __future__ import annotations

from typing import Any

from plait.errors import MissingDependency


def require_crypto() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("encryption at rest", extra="security", package="cryptography") from exc


def require_sqlcipher() -> Any:
    try:
        import sqlcipher3.dbapi2 as sqlcipher
    except ImportError as exc:
        raise MissingDependency("an encrypted database", extra="security", package="sqlcipher3") from exc
    return sqlcipher
