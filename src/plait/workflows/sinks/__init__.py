"""Sinks: what a workflow does with an item. One module per kind, registered by name.

A sink implements one method, :meth:`Sink.apply`, which must be *idempotent for an item*: applied twice
for the same item it leaves the world as applied once (same file path, same table key, same Message-ID,
an ``Idempotency-Key`` header). The engine records each application in a ledger keyed by (workflow,
item, step) in the same transaction as the step's result, and skips sinks already in the ledger; so if
the process dies between the effect and the ledger write, the effect is repeated once, harmlessly.

Sinks that gather many items into one file (digest, ics) store entries in SQLite in ``apply`` and write
their files in :meth:`Sink.flush`, which the engine calls after each batch.

A new sink plugs in with one line: ``register_sink("name", "package.module:Class")``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from plait.workflows.registry import Registry

if TYPE_CHECKING:
    from plait.store import Store
    from plait.workflows.clock import Clock
    from plait.workflows.context import StepContext
    from plait.workflows.spec import SinkStep
    from plait.workflows.templates import Templates


@dataclass
class SinkEnv:
    workflow: str
    step: str  # the sink step's id: gathered entries and the ledger are keyed by it
    output_dir: Path
    base_dir: Path
    store: Store
    clock: Clock
    templates: Templates
    dry_run: bool = False


class SinkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Sink(ABC):
    Options: ClassVar[type[SinkOptions]] = SinkOptions

    @property
    def external(self) -> bool:
        """Its effect leaves this machine (a POST, a mail sent): its ledger row is synced to disk before the
        next effect starts, so a power cut cannot make it happen again (see plait.store.database). Local
        effects (files, table rows) are redone harmlessly and need no sync of their own."""
        return False

    def __init__(self, options: Any, env: SinkEnv) -> None:
        self.options = options
        self.env = env

    @abstractmethod
    def apply(self, ctx: StepContext) -> dict[str, Any]:
        """Act for one item, idempotently; return what was done (stored in the ledger)."""

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        """What :meth:`apply` would do, without doing it (dry runs)."""
        return {"would": type(self).__name__}

    def flush(self, *, force: bool = False) -> None:  # noqa: B027 - only gathering sinks write later
        """Write files gathered from many items (those changed since last written, or all with ``force``)."""

    def close(self) -> None:  # noqa: B027 - most sinks hold nothing open
        """Release connections (the engine calls this when its run ends)."""


SINKS: Registry[Sink] = Registry("sink")


def register_sink(name: str, target: str) -> None:
    SINKS.register(name, target)


register_sink("file", "plait.workflows.sinks.files:FileSink")
register_sink("move", "plait.workflows.sinks.files:MoveSink")
register_sink("copy", "plait.workflows.sinks.files:CopySink")
register_sink("tag", "plait.workflows.sinks.files:TagSink")
register_sink("digest", "plait.workflows.sinks.digest:DigestSink")
register_sink("mail-digest", "plait.workflows.sinks.mail_digest:MailDigestSink")
register_sink("ics", "plait.workflows.sinks.ics:IcsSink")
register_sink("table", "plait.workflows.sinks.table:TableSink")
register_sink("webhook", "plait.workflows.sinks.webhook:WebhookSink")
register_sink("mail", "plait.workflows.sinks.mail:MailSink")
register_sink("index", "plait.workflows.sinks.index:IndexSink")


def sink_class(name: str) -> type[Sink]:
    from plait.workflows.errors import StepError

    cls = SINKS.load(name)
    if cls is None:
        raise StepError(f"unknown sink '{name}'; known sinks: {', '.join(sorted(SINKS))}")
    return cls


def make_sink(step: SinkStep, env: SinkEnv) -> Sink:
    cls = sink_class(step.sink)
    return cls(cls.Options.model_validate(step.with_), env)


TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # write_file_atomic's names: .NAME.XXXXXXXX.tmp


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write a whole file or nothing: a crash never leaves half a file (temporary file, then rename).

    Inside an encrypted plait home (the default output folder is one) the file is sealed; in a folder the
    workflow's author chose elsewhere it is written as is. Either way only its owner can read it.
    """
    from plait.security.storage import write_bytes

    write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def remove_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed process left while writing (never a finished file): call it only
    while holding the workflow's lock, when no write of this workflow can be in progress."""
    removed = []
    if folder.is_dir():
        for path in folder.rglob(".*.tmp"):
            if TEMPORARY.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
