"""redact: personal data in a text replaced by placeholders, reversibly, before the text goes anywhere.

``redact("Mail Anna at anna@example.org")`` gives ``"Mail <PERSON_1> at <EMAIL_ADDRESS_1>"``. The same
value gets the same placeholder throughout a text. With ``keep=True`` the placeholders and what they
stand for are kept in plait's (encrypted) database under a vault id, and :func:`restore` puts them back;
the result itself never carries the original values, so it can be passed on as it is. ``mode="mask"``
gives ``<PERSON>`` without numbers and keeps nothing (for logs and indexes).

What is found and how each kind is checked: :mod:`plait.security.pii`.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from plait.errors import InputError
from plait.readers.document import Document
from plait.runtime import Runtime, get_runtime
from plait.security.pii import ENTITIES, NER_ENTITIES, Detector, default_detector
from plait.security.placeholders import PLACEHOLDER, Vault, apply
from plait.tasks.registry import Task, TaskRequest

MAX_CHARS = 1_000_000
Entity = Literal["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "CREDIT_CARD", "IP_ADDRESS", "LOCATION",
                 "STREET_ADDRESS"]


class RedactRequest(TaskRequest):
    text: str = Field(max_length=MAX_CHARS, description="the text to redact")
    entities: list[Entity] | None = Field(None, description="the kinds of personal data to find (default: all)")
    names: bool = Field(True, description="find names of people and places (spaCy's NER); false: only the kinds "
                                          "found by patterns and checksums, much faster")
    mode: Literal["placeholder", "mask"] = Field("placeholder", description="placeholder: <PERSON_1>, reversible; "
                                                 "mask: <PERSON>")
    keep: bool = Field(False, description="keep the placeholders in plait's vault, so `restore` can undo them")


@dataclass(frozen=True)
class RedactedSpan:
    entity: str
    start: int  # where it was in the original text
    end: int
    placeholder: str
    score: float


@dataclass
class RedactResult:
    text: str
    spans: list[RedactedSpan] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # entity → how many found
    vault: str | None = None  # the id to restore with, when kept


def redact(text: str, *, entities: list[Entity] | tuple[str, ...] | None = None, names: bool = True,
           mode: Literal["placeholder", "mask"] = "placeholder", keep: bool = False,
           detector: Detector | None = None, runtime: Runtime | None = None) -> RedactResult:
    """``text`` with its personal data replaced (see the module docstring)."""
    if len(text) > MAX_CHARS:
        raise InputError(f"the text is {len(text)} characters; redact takes at most {MAX_CHARS} at a time")
    wanted = tuple(entities) if entities else ENTITIES
    unknown = sorted(set(wanted) - set(ENTITIES))
    if unknown:
        raise InputError(f"unknown kind(s) of personal data {', '.join(unknown)}; choose from {', '.join(ENTITIES)}")
    if not names:
        wanted = tuple(e for e in wanted if e not in NER_ENTITIES)
    if keep and mode == "mask":
        raise InputError("mask mode keeps nothing to restore; use mode=placeholder with keep")
    found = (detector or default_detector(nlp=names)).detect(text, wanted)
    vault = Vault() if mode == "placeholder" else None
    redacted, replaced = apply(text, found, vault)
    counts: dict[str, int] = {}
    for r in replaced:
        counts[r.entity] = counts.get(r.entity, 0) + 1
    result = RedactResult(redacted, [RedactedSpan(r.entity, r.start, r.end, r.placeholder, round(r.score, 3))
                                     for r in replaced], counts)
    if keep and vault is not None and vault.back:
        result.vault = _keep(vault, runtime or get_runtime())
    return result


def _keep(vault: Vault, runtime: Runtime) -> str:
    vault_id = secrets.token_hex(8)
    now = time.time()
    with runtime.store.transaction() as conn:
        conn.executemany("INSERT INTO security_vault VALUES (?, ?, ?, ?, ?)",
                         [(vault_id, placeholder, PLACEHOLDER.match(placeholder).group(1),  # type: ignore[union-attr]
                           value, now) for placeholder, value in vault.back.items()])
    return vault_id


def restore(text: str, vault: str, *, runtime: Runtime | None = None) -> str:
    """``text`` (a redacted text, or a model's answer about it) with the vault's placeholders put back."""
    rows = (runtime or get_runtime()).store.query("SELECT placeholder, value FROM security_vault WHERE vault = ?",
                                                  (vault,))
    if not rows:
        raise InputError(f"no redaction vault '{vault}' (it is made by redact with keep=true)")
    kept = Vault()
    kept.back = {r[0]: r[1] for r in rows}
    return kept.restore(text)


PERSONAL_METADATA = ("author", "sender", "recipients", "subject", "to", "cc", "from")


def redact_document(doc: Document, *, detector: Detector | None = None) -> Document:
    """A document read for the index with its personal data masked (``<PERSON>``…) in its text, title,
    sections and personal headers (the ``redact_index`` setting)."""
    from dataclasses import replace

    found = detector or default_detector(nlp=True)

    def mask(text: str | None) -> str | None:
        return apply(text, found.detect(text, ENTITIES), None)[0] if text else text

    sections = tuple(replace(s, text=mask(s.text) or "", heading=mask(s.heading)) for s in doc.sections)
    metadata = {k: (mask(v) or "") if k in PERSONAL_METADATA else v for k, v in doc.metadata.items()}
    return replace(doc, text=mask(doc.text) or "", title=mask(doc.title), sections=sections, metadata=metadata)


TASK = Task(
    name="redact", summary="Replace personal data (names, e-mail addresses, phone, card and IBAN numbers…) by "
    "placeholders", request=RedactRequest, result=RedactResult,
    run=lambda request, ctx: redact(request.text, entities=request.entities, names=request.names, mode=request.mode,
                                    keep=request.keep, runtime=ctx.runtime),
    cacheable=lambda request: not request.keep,  # a kept vault is a new one each time
)
