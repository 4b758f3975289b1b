"""Digests: a daily or weekly report of the items a workflow handled, in Markdown and HTML, with a chart
when there are numbers (items per group, or each entry's value).

Each item adds one entry (a title, a text, a link, a group and a value, all templates) to the report of
its period; the period is cut at ``day_starts`` in ``timezone`` (a "morning digest" with
``day_starts: "07:00"`` covers 07:00 yesterday to 07:00 today). Files are rewritten after each batch,
so the report is always current: ``digests/2024-05-02.md``, ``.html`` and the chart's ``.png``.
Charts use matplotlib (imported only to draw); without it the report says so and has no chart.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from plait.workflows.context import StepContext
from plait.workflows.sinks import SinkOptions, write_atomic
from plait.workflows.sinks.gather import Entry, GatherSink
from plait.workflows.templates import to_datetime

MAX_CHART_BARS = 25


def safe_link(link: object) -> str:
    """A link fit for a digest's HTML or Markdown, or "". Links come from items (a feed entry's ``link``), so
    only http(s) and relative ones are kept (not ``javascript:``, ``data:``…), with the characters that
    could end a Markdown link or an HTML attribute early (spaces, parentheses, quotes, angle brackets)
    percent-encoded."""
    text = str(link or "").strip()
    if not (text.lower().startswith(("http://", "https://")) or (text and ":" not in text)):
        return ""
    return quote(text, safe="/:?#[]@!$&*+,;=%~")


class DigestOptions(SinkOptions):
    path: str = Field("digest-{period}", description="file path without suffix; {period} becomes the period")
    period: Literal["daily", "weekly", "all"] = "daily"
    day_starts: str = Field("00:00", description="when a day (period) begins, HH:MM")
    timezone: str | None = None
    title: str = Field("Digest", description="the report's heading; {period} becomes the period")
    time: str | None = Field(None, description="template for the entry's time (default: when the item arrived)")
    heading: str | None = Field(None, description="template for each entry's heading (default: subject/title)")
    text: str | None = Field(None, description="template for each entry's text")
    link: str | None = Field(None, description="template for each entry's link")
    group: str | None = Field(None, description="template: entries are grouped by it, and counted in the chart")
    value: str | None = Field(None, description="template giving a number per entry (charted; sorts with "
                                                "order: value)")
    order: Literal["time", "value"] = "time"
    formats: tuple[Literal["md", "html"], ...] = ("md", "html")
    chart: bool = True

    @field_validator("day_starts")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        time.fromisoformat(value)
        return value


class DigestSink(GatherSink):
    Options = DigestOptions
    options: DigestOptions

    def _zone(self) -> Any:
        return ZoneInfo(self.options.timezone) if self.options.timezone else datetime.now().astimezone().tzinfo

    def period_of(self, when: datetime) -> str:
        start = time.fromisoformat(self.options.day_starts)
        local = when.astimezone(self._zone()) - timedelta(hours=start.hour, minutes=start.minute)
        if self.options.period == "all":
            return "all"
        if self.options.period == "weekly":
            year, week, _ = local.isocalendar()
            return f"{year}-W{week:02d}"
        return local.date().isoformat()

    def when(self, ctx: StepContext) -> datetime:
        """The entry's time: the ``time`` template's, else when the item arrived; in the digest's zone."""
        when = to_datetime(ctx.render(self.options.time)) if self.options.time else ctx.variables["received"]
        return when if when.tzinfo is not None else when.replace(tzinfo=self._zone())

    def entry(self, ctx: StepContext) -> tuple[str, float, dict[str, Any]]:
        o = self.options
        item = ctx.variables["item"]
        when = self.when(ctx)
        heading = ctx.render_text(o.heading) if o.heading else str(
            item.get("subject") or item.get("title") or item.get("name") or ctx.item_key)
        data: dict[str, Any] = {"heading": heading, "time": when.isoformat()}
        if o.text:
            data["text"] = ctx.render_text(o.text)
        if o.link:
            data["link"] = ctx.render_text(o.link)
        if o.group:
            data["group"] = ctx.render_text(o.group)
        if o.value:
            raw = ctx.render(o.value)
            try:
                data["value"] = float(raw)
            except (TypeError, ValueError):
                data["value"] = None
        return self.period_of(when), when.timestamp(), data

    def _base(self, target: str) -> Path:
        path = Path(self.options.path.replace("{period}", target)).expanduser()
        return path if path.is_absolute() else self.env.output_dir / path

    def _ordered(self, entries: list[Entry]) -> list[Entry]:
        if self.options.order == "value":
            return sorted(entries, key=lambda e: -(e.data.get("value") or 0.0))
        return entries

    def render(self, target: str, entries: list[Entry]) -> list[str]:
        o = self.options
        base = self._base(target)
        title = o.title.replace("{period}", target)
        groups: dict[str, list[Entry]] = {}
        for e in self._ordered(entries):
            groups.setdefault(e.data.get("group") or "", []).append(e)
        chart_png, chart_note = (self._chart(entries, title) if o.chart else (None, None))
        written = []
        if chart_png is not None:
            write_atomic(base.with_name(base.name + ".png"), chart_png)
            written.append(str(base.with_name(base.name + ".png")))
        if "md" in o.formats:
            path = base.with_name(base.name + ".md")
            write_atomic(path, self._markdown(title, entries, groups, chart_png is not None, chart_note, base.name))
            written.append(str(path))
        if "html" in o.formats:
            path = base.with_name(base.name + ".html")
            write_atomic(path, self._html(title, entries, groups, chart_png, chart_note))
            written.append(str(path))
        return written

    def _summary_line(self, entries: list[Entry], groups: dict[str, list[Entry]]) -> str:
        parts = [f"{len(entries)} item(s)"]
        if self.options.group:
            parts.append(", ".join(f"{g or '(none)'}: {len(es)}" for g, es in
                                   sorted(groups.items(), key=lambda kv: -len(kv[1]))))
        values = [e.data["value"] for e in entries if isinstance(e.data.get("value"), int | float)]
        if values:
            parts.append(f"values {min(values):.2f} to {max(values):.2f}, mean {sum(values) / len(values):.2f}")
        return "; ".join(parts)

    def _markdown(self, title: str, entries: list[Entry], groups: dict[str, list[Entry]], chart: bool,
                  note: str | None, stem: str) -> str:
        lines = [f"# {title}", "", self._summary_line(entries, groups), ""]
        if chart:
            lines += [f"![chart]({stem}.png)", ""]
        elif note:
            lines += [f"_{note}_", ""]
        for group, items in groups.items():
            if self.options.group:
                lines += [f"## {group or '(none)'} ({len(items)})", ""]
            for e in items:
                d = e.data
                link = safe_link(d.get("link"))
                head = f"[{d['heading']}]({link})" if link else d["heading"]
                value = f" — {d['value']:.2f}" if isinstance(d.get("value"), int | float) else ""
                lines.append(f"- **{head}**{value} · {d['time'][:16].replace('T', ' ')}")
                if d.get("text"):
                    lines.append("  " + " ".join(str(d["text"]).split()))
            lines.append("")
        return "\n".join(lines)

    def _html(self, title: str, entries: list[Entry], groups: dict[str, list[Entry]], chart: bytes | None,
              note: str | None) -> str:
        esc = html.escape
        out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
               "<style>body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.4}"
               "li{margin:.5em 0}.meta{color:#666;font-size:.9em}</style></head><body>",
               f"<h1>{esc(title)}</h1><p>{esc(self._summary_line(entries, groups))}</p>"]
        if chart is not None:
            out.append(f"<img alt='chart' src='data:image/png;base64,{base64.b64encode(chart).decode()}'>")
        elif note:
            out.append(f"<p><em>{esc(note)}</em></p>")
        for group, items in groups.items():
            if self.options.group:
                out.append(f"<h2>{esc(group or '(none)')} ({len(items)})</h2>")
            out.append("<ul>")
            for e in items:
                d = e.data
                link = safe_link(d.get("link"))
                head = f"<a href='{esc(link)}'>{esc(d['heading'])}</a>" if link else esc(d["heading"])
                value = f" — {d['value']:.2f}" if isinstance(d.get("value"), int | float) else ""
                text = f"<br>{esc(str(d['text']))}" if d.get("text") else ""
                out.append(f"<li><strong>{head}</strong>{value} <span class='meta'>{esc(d['time'][:16])}</span>"
                           f"{text}</li>")
            out.append("</ul>")
        out.append("</body></html>\n")
        return "".join(out)

    def _chart(self, entries: list[Entry], title: str) -> tuple[bytes | None, str | None]:
        values = [(e.data["heading"], e.data["value"]) for e in self._ordered(entries)
                  if isinstance(e.data.get("value"), int | float)]
        counts = Counter(e.data.get("group") or "(none)" for e in entries) if self.options.group else None
        if not values and not counts:
            return None, None
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None, "no chart: install matplotlib (pip install 'plait[workflows]')"
        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
        try:
            if values:
                shown = values[:MAX_CHART_BARS]
                labels = [h if len(h) <= 40 else h[:37] + "..." for h, _ in shown][::-1]
                ax.barh(labels, [v for _, v in shown][::-1], color="#4c72b0")
                ax.set_xlabel("value")
                fig.set_size_inches(7, max(2.5, 0.3 * len(shown) + 1))
            elif counts:
                names = [n for n, _ in counts.most_common(MAX_CHART_BARS)]
                ax.bar(names, [counts[n] for n in names], color="#4c72b0")
                ax.set_ylabel("items")
                plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
            ax.set_title(title)
            fig.tight_layout()
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png")
        finally:
            plt.close(fig)
        return buffer.getvalue(), None
