"""The morning digest of mail: one entry per thread, what needs the person first.

Each message adds an entry (its label and how sure, the words behind an ``urgent``, a one-line gist of
what the sender wrote, the actions it asks with who and when, its dates, whom it answers); the period's
report groups the entries into threads (:mod:`plait.readers.threads`, linking with the previous period's
messages too) and writes, per thread, one line of what it is about, who wrote, what they ask, any date,
and what changed since the previous period. Threads are sorted by what needs the person: ``urgent``
first, then threads that ask something of the person or have a date, then by label (work, personal,
unsure, discussion, newsletter), newest first within each.

Files (``path`` with ``{period}`` replaced): ``.md``, ``.html`` and ``.json`` — the JSON is what a page
renders (the web page's Today view reads it; ``latest.json`` beside it is always the newest period).
Options name the steps' results with expressions (``label: label``, ``about: gist.text``…), so the
workflow's step ids are its own.
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from plait.workflows.context import StepContext
from plait.workflows.sinks import write_atomic
from plait.workflows.sinks.digest import DigestOptions, DigestSink, safe_link
from plait.workflows.sinks.gather import Entry

# The order a person wants their mail in: what needs them first.
NEED_ORDER = {"urgent": 0, "asks": 1, "work": 2, "personal": 3, "unsure": 4, "discussion": 5, "newsletter": 6}
OTHER_LABEL = 4.5
SECTION_TITLES = {"urgent": "Urgent", "asks": "Asks something of you", "work": "Work", "personal": "Personal",
                  "unsure": "Unsure", "discussion": "Discussion", "newsletter": "Newsletters"}
MAX_ASKS = 3
SINCE = {"daily": "yesterday", "weekly": "last week"}  # the previous period, as a thread's change says it



def digest_json(template: str, output_dir: Path, period: str) -> Path:
    """Where a ``mail-digest`` sink whose ``path`` is ``template`` keeps the JSON of ``period``; "latest" is
    the newest period's copy, beside the periods' own files (the web page's Today view reads it)."""
    def base(name: str) -> Path:
        path = Path(template.replace("{period}", name)).expanduser()
        return path if path.is_absolute() else output_dir / path

    if period == "latest" and "{period}" in template:
        return base(period).parent / "latest.json"
    path = base(period)
    return path.with_name(path.name + ".json")

class MailDigestOptions(DigestOptions):
    group: str | None = Field("label", description="(the chart counts the labels)")
    label: str = Field("label", description="expression: the classify step's result (label, scores, why)")
    about: str = Field("gist.text", description="expression: one line of what the message is about")
    asks: str = Field("actions.actions if actions else []", description="expression: its action items")
    dates: str = Field("actions.dates if actions else []", description="expression: its dates")


class MailDigestSink(DigestSink):
    Options = MailDigestOptions  # type: ignore[assignment]  # a DigestOptions with more fields
    options: MailDigestOptions

    def entry(self, ctx: StepContext) -> tuple[str, float, dict[str, Any]]:
        o = self.options
        item = ctx.variables["item"]
        when = self.when(ctx)
        result = _safe(ctx, o.label) or {}
        scores = result.get("scores") or []
        label = result.get("label")
        data: dict[str, Any] = {
            "subject": str(item.get("subject") or ""), "sender": str(item.get("sender") or ""),
            "time": when.isoformat(), "message_id": str(item.get("message_id") or ""),
            "in_reply_to": str(item.get("in_reply_to") or ""), "references": str(item.get("references") or ""),
            "answers": str(item.get("answers") or ""), "key": ctx.item_key,
            "label": label or "unsure", "unsure": label is None,
            "probability": float(scores[0]["probability"]) if scores else None,
            "guess": scores[0]["label"] if scores else None,
            "why": list(result.get("why") or []),
            "about": " ".join(str(_safe(ctx, o.about) or "").split()),
            "asks": [_ask(a) for a in (_safe(ctx, o.asks) or [])][:MAX_ASKS],
            "dates": [{"text": d.get("text"), "iso": d.get("iso")} for d in (_safe(ctx, o.dates) or [])
                      if isinstance(d, dict)],
        }
        data["group"] = data["label"]  # the chart counts labels
        if o.link:
            data["link"] = ctx.render_text(o.link)
        return self.period_of(when), when.timestamp(), data

    def render(self, target: str, entries: list[Entry]) -> list[str]:
        o = self.options
        base = self._base(target)
        title = o.title.replace("{period}", target)
        previous = self._previous(target)
        before = self.entries(previous) if previous else []
        threads = build_threads(entries, before, since=SINCE.get(o.period, "the previous period"))
        digest = {"title": title, "period": target, "previous_period": previous,
                  "messages": len(entries), "threads": threads,
                  "labels": dict(Counter(e.data.get("label", "unsure") for e in entries).most_common())}
        chart_png, chart_note = (self._chart(entries, title) if o.chart else (None, None))
        written = []
        if chart_png is not None:
            png = base.with_name(base.name + ".png")
            write_atomic(png, chart_png)
            written.append(str(png))
        outputs = {"md": lambda: markdown(digest, f"{base.name}.png" if chart_png else None, chart_note),
                   "html": lambda: page(digest, chart_png, chart_note)}
        for fmt in o.formats:
            path = base.with_name(f"{base.name}.{fmt}")
            write_atomic(path, outputs[fmt]())
            written.append(str(path))
        data = json.dumps(digest, ensure_ascii=False, indent=1)
        path = base.with_name(base.name + ".json")
        write_atomic(path, data)
        written.append(str(path))
        if "{period}" in o.path and self._is_latest(target):
            latest = digest_json(o.path, self.env.output_dir, "latest")
            write_atomic(latest, data)
            written.append(str(latest))
        return written

    def _previous(self, target: str) -> str | None:
        try:
            if self.options.period == "daily":
                return (date.fromisoformat(target) - timedelta(days=1)).isoformat()
            if self.options.period == "weekly":
                monday = datetime.strptime(target + "-1", "%G-W%V-%u") - timedelta(weeks=1)
                year, week, _ = monday.isocalendar()
                return f"{year}-W{week:02d}"
        except ValueError:
            return None
        return None

    def _is_latest(self, target: str) -> bool:
        env = self.env
        rows = env.store.query("SELECT MAX(target) FROM workflow_entries WHERE workflow = ? AND sink = ?",
                               (env.workflow, env.step))
        return not rows or rows[0][0] is None or rows[0][0] <= target


def _safe(ctx: StepContext, expression: str) -> Any:
    """An option's expression; a step that did not run (its ``when`` was false) gives nothing."""
    try:
        return ctx.evaluate(expression)
    except Exception:  # noqa: BLE001 - a missing step result is "nothing", whatever the template engine raises
        return None


def _ask(action: Any) -> dict[str, Any]:
    if not isinstance(action, dict):
        return {"text": str(action), "action": str(action), "who": None, "due": None}
    return {"text": action.get("text"), "action": action.get("action") or action.get("text"),
            "who": action.get("owner"), "due": action.get("due")}


# --- threads ----------------------------------------------------------------------------------------

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


# --- rendering --------------------------------------------------------------------------------------

def _label_text(t: dict[str, Any]) -> str:
    if t["unsure"]:
        return "unsure"
    p = t.get("probability")
    text = f"{t['label']} {p:.2f}" if isinstance(p, int | float) else t["label"]
    if t["why"]:
        text += " — because of: " + ", ".join(f"“{w}”" for w in t["why"])
    return text


def _ask_text(a: dict[str, Any]) -> str:
    parts = [a.get("action") or a.get("text") or ""]
    if a.get("who"):
        parts.insert(0, f"{a['who']}:")
    if a.get("due"):
        parts.append(f"(by {a['due']})")
    return " ".join(p for p in parts if p)


def markdown(digest: dict[str, Any], chart: str | None, note: str | None) -> str:
    lines = [f"# {digest['title']}", "", _summary(digest), ""]
    if chart:
        lines += [f"![labels]({chart})", ""]
    elif note:
        lines += [f"_{note}_", ""]
    section = None
    for t in digest["threads"]:
        if t["need"] != section:
            if section is not None:
                lines.append("")
            section = t["need"]
            count = sum(1 for x in digest["threads"] if x["need"] == section)
            lines += [f"## {SECTION_TITLES.get(section, section)} ({count})", ""]
        link = safe_link(t.get("link"))
        subject = f"[{t['subject']}]({link})" if link else t["subject"]
        lines.append(f"- **{subject}** — {', '.join(t['from'])} · {_label_text(t)} · {t['since_previous']}")
        if t["about"]:
            lines.append(f"  {t['about']}")
        if t["answers"]:
            lines.append(f"  Answers {', '.join(t['answers'])}.")
        if t["asks"]:
            lines.append("  Asks: " + "; ".join(_ask_text(a) for a in t["asks"]))
        if t["dates"]:
            lines.append("  Dates: " + ", ".join(f"{d['text']} ({d['iso']})" for d in t["dates"][:3]))
    lines.append("")
    return "\n".join(lines)


def _summary(digest: dict[str, Any]) -> str:
    labels = ", ".join(f"{k}: {v}" for k, v in digest["labels"].items())
    return f"{digest['messages']} message(s) in {len(digest['threads'])} thread(s); {labels}"


def page(digest: dict[str, Any], chart: bytes | None, note: str | None) -> str:
    import base64

    esc = html.escape
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(digest['title'])}</title>",
           "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.4}"
           "li{margin:.7em 0}.meta{color:#555;font-size:.9em}.unsure{color:#a60}.urgent{color:#b00}</style>"
           "</head><body>", f"<h1>{esc(digest['title'])}</h1><p>{esc(_summary(digest))}</p>"]
    if chart is not None:
        out.append(f"<img alt='labels' src='data:image/png;base64,{base64.b64encode(chart).decode()}'>")
    elif note:
        out.append(f"<p><em>{esc(note)}</em></p>")
    section = None
    for t in digest["threads"]:
        if t["need"] != section:
            if section is not None:
                out.append("</ul>")
            section = t["need"]
            out.append(f"<h2>{esc(SECTION_TITLES.get(section, section))}</h2><ul>")
        link = safe_link(t.get("link"))
        subject = f"<a href='{esc(link)}'>{esc(t['subject'])}</a>" if link else esc(t["subject"])
        kind = "unsure" if t["unsure"] else t["label"]
        out.append(f"<li><strong>{subject}</strong> <span class='meta'>— {esc(', '.join(t['from']))} · "
                   f"<span class='{esc(kind)}'>{esc(_label_text(t))}</span> · {esc(t['since_previous'])}</span>")
        if t["about"]:
            out.append(f"<br>{esc(t['about'])}")
        if t["answers"]:
            out.append(f"<br><span class='meta'>Answers {esc(', '.join(t['answers']))}.</span>")
        if t["asks"]:
            out.append("<br>Asks: " + "; ".join(esc(_ask_text(a)) for a in t["asks"]))
        if t["dates"]:
            out.append("<br><span class='meta'>Dates: " + esc(", ".join(f"{d['text']} ({d['iso']})"
                                                                         for d in t["dates"][:3])) + "</span>")
        out.append("</li>")
    if section is not None:
        out.append("</ul>")
    out.append("</body></html>\n")
    return "".join(out)
