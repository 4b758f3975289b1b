"""A period's mail entries as threads, most needing the person first.

Messages are linked into threads (:mod:`plait.readers.threads`, with the previous period's messages too);
each thread says what it is about, who wrote, what they ask of the person, the dates ahead and what changed
since the previous period. Threads are sorted by what needs the person: ``urgent`` first, then threads that
ask something of the person or have a date, then by label (work, personal, unsure, discussion, newsletter),
newest first within each.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from plait.workflows.sinks.gather import Entry

# The order a person wants their mail in: what needs them first.
NEED_ORDER = {"urgent": 0, "asks": 1, "work": 2, "personal": 3, "unsure": 4, "discussion": 5, "newsletter": 6}
OTHER_LABEL = 4.5
MAX_ASKS = 3


def build_threads(entries: list[Entry], before: list[Entry], since: str = "yesterday") -> list[dict[str, Any]]:
    """The period's entries as threads, most needing the person first (see the module docstring); ``before``
    are the previous period's, which ``since`` names ("yesterday", "last week")."""
    from plait.readers.threads import Message, normalize_subject, references_of, thread_ids

    def message(e: Entry) -> Message:
        d = e.data
        return Message(e.item_key, d.get("message_id", ""), d.get("in_reply_to", ""),
                       references_of(d.get("references", "")), d.get("subject", ""), e.at)

    now_keys = {e.item_key for e in entries}
    ids = thread_ids([message(e) for e in [*before, *entries]])
    grouped: dict[str, list[Entry]] = {}
    earlier: Counter[str] = Counter()
    for e in before:
        if e.item_key not in now_keys:
            earlier[ids[e.item_key]] += 1
    for e in entries:
        grouped.setdefault(ids[e.item_key], []).append(e)
    threads = []
    for thread, members in grouped.items():
        members.sort(key=lambda e: e.at)
        first, last = members[0].data, members[-1].data
        labels = [m.data.get("label", "unsure") for m in members]
        label = min(labels, key=lambda x: NEED_ORDER.get(x, OTHER_LABEL))
        asks = _unique([a for m in members for a in m.data.get("asks", []) if _asks_you(a)], key="action")[:MAX_ASKS]
        dates = _unique([d for m in members for d in m.data.get("dates", []) if _ahead(d, m.data.get("time"))],
                        key="iso")
        due = sorted(d for d in [*(a.get("due") for a in asks), *(d.get("iso") for d in dates)] if d)
        need = label if label == "urgent" else ("asks" if asks else label)
        threads.append({
            "thread": thread, "subject": first.get("subject") or "(no subject)",
            "topic": normalize_subject(first.get("subject", "")),
            "need": need, "label": label, "unsure": all(m.data.get("unsure") for m in members),
            "probability": max((m.data.get("probability") or 0.0 for m in members if m.data.get("label") == label),
                               default=None),
            "why": _unique([w for m in members if m.data.get("label") == "urgent" for w in m.data.get("why", [])]),
            "about": last.get("about") or first.get("about") or "",
            "from": _unique([_name(m.data.get("sender", "")) for m in members]),
            "answers": _unique([m.data["answers"] for m in members if m.data.get("answers")]),
            "asks": asks, "dates": dates, "due": due[0] if due else None,
            "new": len(members), "earlier": earlier.get(thread, 0),
            "since_previous": _change(len(members), earlier.get(thread, 0), since),
            "latest": last.get("time"), "link": last.get("link"),
            "messages": [{"key": m.item_key, "time": m.data.get("time"), "from": _name(m.data.get("sender", "")),
                          "subject": m.data.get("subject"), "about": m.data.get("about"),
                          "label": m.data.get("label"), "probability": m.data.get("probability"),
                          "link": m.data.get("link")} for m in members],
        })
    threads.sort(key=lambda t: (NEED_ORDER.get(t["need"], OTHER_LABEL), t["due"] or "9999", _minus(t["latest"])))
    return threads


# A request made of the reader: "can you…", "please…", "you need to…", not any imperative ("note that…").
_REQUEST = re.compile(r"\b(?:can|could|would|will) you\b|\bplease\b|\bkindly\b|\byou (?:need|have|must|should)\b|"
                      r"\bi (?:need|want|would like) you to\b|\blet me know\b|\bremember to\b|\bdon'?t forget\b",
                      re.IGNORECASE)
DATE_HORIZON_DAYS = 365


def _asks_you(action: dict[str, Any]) -> bool:
    """What the sender asks of the person: a request addressed to them, not the sender's own plans or
    the imperatives of an announcement or an argument."""
    return action.get("who") == "you" and bool(_REQUEST.search(str(action.get("text") or "")))


def _ahead(mention: dict[str, Any], sent: str | None) -> bool:
    """A day (or a time) from the mail's own date to a year ahead: the dates a person plans by."""
    iso = str(mention.get("iso") or "")
    if len(iso) < 10 or not sent:
        return False
    try:
        day, start = date.fromisoformat(iso[:10]), datetime.fromisoformat(sent).date()
    except ValueError:
        return False
    return start <= day <= start + timedelta(days=DATE_HORIZON_DAYS)


def _minus(iso: str | None) -> float:
    try:
        return -datetime.fromisoformat(iso or "").timestamp()
    except ValueError:
        return 0.0


def _change(new: int, earlier: int, since: str) -> str:
    replies = "reply" if new == 1 else "replies"
    if earlier == 0:
        return "new thread" if new == 1 else f"new thread, {new} messages"
    return f"{new} new {replies} since {since} ({earlier} before)"


def _unique(values: list[Any], key: str | None = None) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for v in values:
        k = (v.get(key) if isinstance(v, dict) and key else v)
        if k in seen or not k:
            continue
        seen.add(k)
        out.append(v)
    return out


def _name(sender: str) -> str:
    from email.utils import parseaddr

    if "(" in sender and sender.rstrip().endswith(")"):  # Usenet's "address (Full Name)"
        return sender[sender.find("(") + 1: sender.rfind(")")].strip() or sender
    name, address = parseaddr(sender)
    return name or address or sender
