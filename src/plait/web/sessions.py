"""Signing in to the web page as local tools do: a one-time link, then an HttpOnly session cookie.

`plait up` (or `plait open`) makes a sign-in token and prints ``http://127.0.0.1:8434/signin?token=…``
(as Jupyter does). Opening it once starts a session: the server sets an HttpOnly, SameSite=Strict cookie
and the link is spent. A session is the machine's owner: it may do everything the local key may.

Requests authenticated by the cookie are protected against cross-site forgery twice: the cookie is
SameSite=Strict, and every request that changes something must carry the session's CSRF token in the
``X-Plait-CSRF`` header (the page reads it from ``GET /v1/session``, which another site cannot read) and,
when the browser sends an ``Origin``, come from the page's own origin.

Only SHA-256 hashes of tokens and session secrets are stored, so the database holds nothing usable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from plait.store import Store

COOKIE = "plait_session"
CSRF_HEADER = "X-Plait-CSRF"
TOKEN_SECONDS = 24 * 3600  # a printed link stays valid a day, until used
SESSION_SECONDS = 30 * 24 * 3600


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Session:
    id: str
    csrf: str
    expires_at: float


def new_signin_token(store: Store, *, now: float | None = None) -> str:
    """A one-time sign-in token (what the printed link carries)."""
    token = secrets.token_urlsafe(24)
    at = now or time.time()
    with store.transaction() as conn:
        conn.execute("DELETE FROM web_signin_tokens WHERE expires_at < ?", (at,))
        conn.execute("INSERT INTO web_signin_tokens VALUES (?, ?)", (_hash(token), at + TOKEN_SECONDS))
    return token


def redeem(store: Store, token: str, *, now: float | None = None) -> tuple[str, Session] | None:
    """Spend a sign-in token: a new session's secret (for the cookie) and the session, or None when the
    token is unknown, used or expired."""
    at = now or time.time()
    with store.transaction() as conn:
        row = conn.execute("DELETE FROM web_signin_tokens WHERE token_hash = ? RETURNING expires_at",
                           (_hash(token),)).fetchone()
        if row is None or row[0] < at:
            return None
        secret = secrets.token_urlsafe(32)
        session = Session(secrets.token_hex(8), secrets.token_urlsafe(24), at + SESSION_SECONDS)
        conn.execute("DELETE FROM web_sessions WHERE expires_at < ?", (at,))
        conn.execute("INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?)",
                     (session.id, _hash(secret), session.csrf, at, session.expires_at))
    return secret, session


def session_for(store: Store, secret: str, *, now: float | None = None) -> Session | None:
    """The live session a cookie's secret belongs to."""
    rows = store.query("SELECT id, csrf, expires_at FROM web_sessions WHERE secret_hash = ?", (_hash(secret),))
    if not rows or rows[0]["expires_at"] < (now or time.time()):
        return None
    return Session(rows[0]["id"], rows[0]["csrf"], rows[0]["expires_at"])


def end(store: Store, session_id: str) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM web_sessions WHERE id = ?", (session_id,))


def csrf_ok(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf, sent)
