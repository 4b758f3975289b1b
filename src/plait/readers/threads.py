"""Mail threads: messages grouped into the discussions they belong to.

Messages are linked by their headers, as mail clients thread them (Jamie Zawinski's algorithm, simplified
to grouping): a message belongs with every message its ``References`` and ``In-Reply-To`` name, and with
every other message naming one of the same, even when the message they all answer is not in the mailbox.
A message with neither header joins the thread whose subject it shares once "Re:", "Fwd:", "AW:", "[list]"
and the like are taken off (many clients and gateways drop the headers); subjects too short to tell
threads apart ("Re: hi") never join that way.

A thread's id is stable as messages arrive: the id of the first message it names (its root) when there is
one, else the first message's own id, else its subject (when long enough to thread by), else the first
message's key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Reply and forward prefixes in the languages mail clients write them, and mailing-list tags.
_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|fw|aw|sv|vs|wg|tr|rv|odp|antw|vá|ynt|r|i|enc)(?:\[\d+\]|\(\d+\))?\s*[:：]|"
                     r"\[[^\]]{1,40}\])\s*", re.IGNORECASE)
MIN_SUBJECT_CHARS = 8  # shorter normalised subjects ("hi", "test") never thread by subject alone


@dataclass(frozen=True)
class Message:
    key: str  # the caller's name for it (a workflow item key)
    message_id: str = ""
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    subject: str = ""
    time: float = 0.0


def normalize_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and list tags, lower-cased, spaces collapsed."""
    text = subject or ""
    while True:
        stripped = _PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return " ".join(text.split()).lower()


def thread_ids(messages: Sequence[Message]) -> dict[str, str]:
    """Each message's thread id (key → id); see the module docstring for how messages are linked."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    nodes: dict[str, str] = {}  # message key → its node in the union-find
    for m in messages:
        node = f"id:{m.message_id}" if m.message_id else f"key:{m.key}"
        nodes[m.key] = node
        find(node)
        for ref in _links(m):
            union(node, f"id:{ref}")
    # Subject fallback: messages without threading headers join the thread of their subject.
    by_subject: dict[str, str] = {}
    for m in sorted(messages, key=lambda m: m.time):
        subject = normalize_subject(m.subject)
        if len(subject) < MIN_SUBJECT_CHARS:
            continue
        if subject in by_subject and not _links(m):
            union(nodes[m.key], by_subject[subject])
        by_subject.setdefault(subject, nodes[m.key])
    for m in messages:  # a threaded message also takes in headerless ones that came before it
        subject = normalize_subject(m.subject)
        if len(subject) >= MIN_SUBJECT_CHARS and not _links(m) and subject in by_subject:
            union(nodes[m.key], by_subject[subject])
    return _named(messages, nodes, find)


def _links(m: Message) -> list[str]:
    return [r for r in (*m.references, m.in_reply_to) if r and r != m.message_id]


def _named(messages: Sequence[Message], nodes: dict[str, str], find: object) -> dict[str, str]:
    groups: dict[str, list[Message]] = {}
    for m in messages:
        groups.setdefault(find(nodes[m.key]), []).append(m)  # type: ignore[operator]
    out: dict[str, str] = {}
    for members in groups.values():
        first = min(members, key=lambda m: (m.time, m.key))
        roots = [m.references[0] for m in sorted(members, key=lambda m: m.time) if m.references]
        subject = normalize_subject(first.subject)
        # Only a subject long enough to thread by names one thread; an empty or short one ("hi") may be shared
        # by threads kept apart, so their first message's key names them.
        name = roots[0] if roots else (first.in_reply_to or first.message_id or (
            f"subject:{subject}" if len(subject) >= MIN_SUBJECT_CHARS else first.key))
        for m in members:
            out[m.key] = name
    return out


def references_of(value: str | Iterable[str]) -> tuple[str, ...]:
    """A space-separated list of ids (a mail item's ``references``) as a tuple."""
    if isinstance(value, str):
        return tuple(v for v in value.split() if v)
    return tuple(value)
