"""The morning digest of mail: one entry per thread, what needs the person first.

Each message adds an entry (its label and how sure, the words behind an ``urgent``, a one-line gist of
what the sender wrote, the actions it asks with who and when, its dates, whom it answers); the period's
report groups the entries into threads, sorted by what needs the person (:mod:`.mail_threads`), and
writes them for reading (:mod:`.mail_pages`).

Files (``path`` with ``{period}`` replaced): ``.md``, ``.html`` and ``.json`` — the JSON is what a page
renders (the web page's Today view reads it; ``latest.json`` beside it is always the newest period).
Options name the steps' results with expressions (``label: label``, ``about: gist.text``…), so the
workflow's step ids are its own.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import Field

from plait.workflows.context import StepContext
from plait.workflows.sinks import write_atomic
from plait.workflows.sinks.digest import DigestOptions, DigestSink
from plait.workflows.sinks.gather import Entry
from plait.workflows.sinks.mail_pages import markdown, page
from plait.workflows.sinks.mail_threads import MAX_ASKS, build_threads

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
