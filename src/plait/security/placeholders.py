"""Reversible placeholders: personal data replaced by ``<PERSON_1>``, ``<EMAIL_ADDRESS_2>``…, and put back.

A :class:`Vault` numbers each distinct value once per entity type, so the same person is ``<PERSON_1>``
in every message of a conversation (a remote model can still tell who is who) and the owner can restore
the text exactly. The vault lives in memory for a request to a remote model; ``plait.tasks.redact`` can
keep one in the (encrypted) database so a redacted text can be restored later. :class:`StreamRestorer`
restores a streamed answer chunk by chunk, holding back a chunk's tail that may be the start of a
placeholder cut in two.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from plait.security.pii import Finding

PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d+)>")
_LONGEST = 40  # longest placeholder plausible in a stream's tail


@dataclass
class Vault:
    """Placeholder ↔ original value, per entity type; thread-safe."""

    forward: dict[tuple[str, str], str] = field(default_factory=dict)  # (entity, value) → placeholder
    back: dict[str, str] = field(default_factory=dict)  # placeholder → value
    counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def placeholder(self, entity: str, value: str) -> str:
        with self._lock:
            found = self.forward.get((entity, value))
            if found is None:
                self.counts[entity] = self.counts.get(entity, 0) + 1
                found = f"<{entity}_{self.counts[entity]}>"
                self.forward[(entity, value)] = found
                self.back[found] = value
            return found

    def restore(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.back.get(m.group(0), m.group(0)), text)


@dataclass(frozen=True)
class Replacement:
    entity: str
    start: int  # in the original text
    end: int
    placeholder: str
    score: float


def apply(text: str, findings: Sequence[Finding], vault: Vault | None) -> tuple[str, list[Replacement]]:
    """``text`` with each finding replaced: a numbered placeholder from ``vault``, or ``<ENTITY>`` without one."""
    out: list[str] = []
    done: list[Replacement] = []
    at = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < at:
            continue
        value = text[f.start:f.end]
        token = vault.placeholder(f.entity, value) if vault is not None else f"<{f.entity}>"
        out += [text[at:f.start], token]
        done.append(Replacement(f.entity, f.start, f.end, token, f.score))
        at = f.end
    out.append(text[at:])
    return "".join(out), done


class StreamRestorer:
    """Restores placeholders in a stream of text pieces that may cut a placeholder in two."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        cut = text.rfind("<")
        if cut >= 0 and ">" not in text[cut:] and len(text) - cut <= _LONGEST:
            self._held, text = text[cut:], text[:cut]  # may be the start of "<PERSON_1>"
        else:
            self._held = ""
        return self.vault.restore(text)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return self.vault.restore(held)
