"""Manual runs: items given by hand (``plait run FILE --item '{"text": "..."}'``, or the server's
``POST /v1/workflows/NAME/run``). The trigger itself yields nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import Field

from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions


class ManualOptions(TriggerOptions):
    poll_seconds: float = Field(5.0, ge=0.01, le=86_400)


class ManualTrigger(Trigger):
    Options = ManualOptions

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        return iter(())
