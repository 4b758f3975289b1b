"""Triggers: where a workflow's items come from. One module per kind, registered by name.

A trigger implements one method, :meth:`Trigger.scan`: a generator of the items that are new since its
*cursor* (a JSON object it updates in place *before* yielding each item, so the engine can store the
cursor together with the items yielded so far). Items carry a stable ``key`` (a message, a file version,
a fire time): the engine records each key once, so a source read twice never yields an item twice.
:meth:`Trigger.next_wait` says when to look again; triggers with push events (folder) set the engine's
``signal`` to wake it sooner. A source that cannot be read raises :class:`TriggerError`.

A new trigger plugs in with one line: ``register_trigger("name", "package.module:Class")``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from plait.workflows.clock import Clock
from plait.workflows.registry import Registry

if TYPE_CHECKING:
    import httpx

    from plait.security.ssrf import NetworkPolicy
    from plait.workflows.spec import Workflow


@dataclass(frozen=True)
class TriggerItem:
    key: str
    data: dict[str, Any]
    at: float | None = None  # the item's own time (Unix seconds), for `--since`


@dataclass
class TriggerEnv:
    workflow: str
    base_dir: Path
    clock: Clock
    known: Callable[[Sequence[str]], set[str]]  # keys already recorded: skip reading those again
    signal: threading.Event
    http: Callable[[], httpx.Client] | None = None
    network: NetworkPolicy | None = None  # what non-HTTP connections (IMAP) may reach; HTTP goes through `http`


class TriggerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    poll_seconds: float = Field(60.0, ge=0.01, le=86_400, description="how often to look for new items")


class Trigger(ABC):
    Options: ClassVar[type[TriggerOptions]] = TriggerOptions

    def __init__(self, options: Any, env: TriggerEnv) -> None:
        self.options = options
        self.env = env

    @abstractmethod
    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        """Yield items newer than ``cursor``, updating ``cursor`` before each yield."""

    def next_wait(self, now: float) -> float:
        """Seconds until it is worth scanning again."""
        return float(self.options.poll_seconds)

    def close(self) -> None:  # noqa: B027 - most triggers hold nothing open
        """Release connections, watchers."""


TRIGGERS: Registry[Trigger] = Registry("trigger")


def register_trigger(name: str, target: str) -> None:
    TRIGGERS.register(name, target)


register_trigger("folder", "plait.workflows.triggers.folder:FolderTrigger")
register_trigger("maildir", "plait.workflows.triggers.mail:MaildirTrigger")
register_trigger("mbox", "plait.workflows.triggers.mail:MboxTrigger")
register_trigger("imap", "plait.workflows.triggers.imap:ImapTrigger")
register_trigger("calendar", "plait.workflows.triggers.calendar:CalendarTrigger")
register_trigger("feed", "plait.workflows.triggers.feed:FeedTrigger")
register_trigger("schedule", "plait.workflows.triggers.schedule:ScheduleTrigger")
register_trigger("webhook", "plait.workflows.triggers.webhook:WebhookTrigger")
register_trigger("manual", "plait.workflows.triggers.manual:ManualTrigger")


def trigger_class(name: str) -> type[Trigger]:
    from plait.workflows.errors import StepError

    cls = TRIGGERS.load(name)
    if cls is None:
        raise StepError(f"unknown trigger type '{name}'; known: {', '.join(sorted(TRIGGERS))}")
    return cls


def make_trigger(workflow: Workflow, env: TriggerEnv) -> Trigger:
    cls = trigger_class(workflow.trigger.type)
    return cls(cls.Options.model_validate(workflow.trigger.options), env)
