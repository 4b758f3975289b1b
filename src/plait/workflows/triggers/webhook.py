"""Webhooks: items POSTed to the server (``POST /v1/workflows/NAME/webhook``), each request one item.

The route (see :mod:`plait.workflows.router`) checks the workflow's own webhook key and records the item
in SQLite before answering, so an accepted delivery is never lost; this trigger reads nothing itself and
only says how often a process without the server (``plait run --watch``) looks for recorded items.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions


class WebhookOptions(TriggerOptions):
    poll_seconds: float = Field(5.0, ge=0.01, le=86_400)
    max_bytes: int = Field(1_000_000, ge=1, description="largest request body accepted")


class WebhookTrigger(Trigger):
    Options = WebhookOptions

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        return iter(())
