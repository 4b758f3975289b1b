"""Webhook keys: each workflow with a webhook trigger has its own key, good for its route only.

Only a SHA-256 of the key is stored; ``plait workflows webhook-key NAME`` creates (or replaces) it and
shows it once. Senders pass it as the ``X-Plait-Webhook-Key`` header (or ``?key=``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from plait.store import Store

PREFIX = "plaitwh-"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_webhook_key(store: Store, workflow: str) -> str:
    """A new key for ``workflow``'s webhook (any earlier key stops working)."""
    secret = PREFIX + secrets.token_urlsafe(32)
    with store.transaction() as conn:
        conn.execute("INSERT OR REPLACE INTO workflow_webhook_keys VALUES (?, ?, ?, ?)",
                     (workflow, _hash(secret), secret[:12], time.time()))
    return secret


def verify_webhook_key(store: Store, workflow: str, secret: str | None) -> bool:
    if not secret:
        return False
    rows = store.query("SELECT secret_hash FROM workflow_webhook_keys WHERE workflow = ?", (workflow,))
    return bool(rows) and hmac.compare_digest(rows[0][0], _hash(secret))
