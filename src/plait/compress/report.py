"""A compression report: every variant side by side with the original, as a table, JSON and an HTML page
with a size / speed / quality chart."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.compress.measure import PRIMARY, Measurement
from plait.compress.source import Kind

if TYPE_CHECKING:
    from plait.settings import Settings


@dataclass
class Report:
    model: str
    kind: Kind
    eval_source: str
    eval_size: int
    rows: list[Measurement]  # rows[0] is the original
    when: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    load: float | None = field(default_factory=lambda: round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg")
                               else None)
    notes: list[str] = field(default_factory=list)

    @property
    def primary(self) -> tuple[str, bool]:
        return PRIMARY[self.kind]

    def compared(self, row: Measurement) -> dict[str, float | None]:
        """Ratios and differences of ``row`` against the original (row 0)."""
        base = self.rows[0]
        metric, _ = self.primary

        def ratio(a: float | None, b: float | None) -> float | None:
            return round(a / b, 2) if a and b else None

        delta = None
        if metric in row.quality and metric in base.quality:
            delta = row.quality[metric] - base.quality[metric]
            delta = round(delta * 100, 2) if self.kind != "chat" else round(delta, 3)  # points, or perplexity
        return {"smaller_x": ratio(base.size_mb, row.size_mb),
                "faster_x": ratio(base.latency_ms_p50, row.latency_ms_p50),
                "throughput_x": ratio(row.throughput, base.throughput), "quality_change": delta}

    def as_dict(self) -> dict[str, Any]:
        metric, higher = self.primary
        return {"model": self.model, "kind": self.kind, "when": self.when, "load_1min": self.load,
                "eval": {"source": self.eval_source, "size": self.eval_size},
                "primary_metric": metric, "higher_is_better": higher, "notes": self.notes,
                "rows": [{**r.as_dict(), "vs_original": self.compared(r)} for r in self.rows]}

    def table_rows(self) -> tuple[list[str], list[list[str]]]:
        metric, _ = self.primary
        unit = "pts" if self.kind != "chat" else ""
        header = ["model", "method", "size MB", "peak MB", "p50 ms", "p95 ms", f"{self.rows[0].throughput_unit}",
                  metric, f"Δ {metric} {unit}".strip(), "smaller", "faster"]
        body = []
        for r in self.rows:
            c = self.compared(r)
            body.append([r.label, r.method, _num(r.size_mb), _num(r.peak_mb), _num(r.latency_ms_p50),
                         _num(r.latency_ms_p95), _num(r.throughput), _num(r.quality.get(metric)),
                         _signed(c["quality_change"]), _times(c["smaller_x"]), _times(c["faster_x"])])
        return header, body

    def text(self) -> str:
        header, body = self.table_rows()
        widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
        lines.append(f"{self.quality_basis()}; 1-min load {self.load}")
        return "\n".join(lines + self.notes)

    def quality_basis(self) -> str:
        if self.kind == "chat":
            scored = int(self.rows[0].quality.get("tokens_scored", 0))
            return (f"perplexity over {scored} scored tokens of {self.eval_source}; latency per generated token, "
                    "tokens/s generating")
        return (f"quality on {self.eval_size} items of {self.eval_source}; latency at batch 1, throughput with 32 "
                "at once")

    def write(self, folder: Path) -> dict[str, Path]:
        """report.json, report.html (and chart.png when matplotlib is installed) in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"json": folder / "report.json", "html": folder / "report.html"}
        paths["json"].write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        png = self.chart()
        if png is not None:
            paths["chart"] = folder / "chart.png"
            paths["chart"].write_bytes(png)
        paths["html"].write_text(self.html(png), encoding="utf-8")
        return paths

    def chart(self) -> bytes | None:
        """Three panels (size, latency, quality), one bar per model; None without matplotlib."""
        try:
            import matplotlib
        except ImportError:
            return None
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        metric, higher = self.primary
        names = [r.label for r in self.rows]
        panels = [("size on disk (MB)", [r.size_mb or 0 for r in self.rows]),
                  ("latency p50, batch 1 (ms)", [r.latency_ms_p50 for r in self.rows]),
                  (f"{metric} ({'higher' if higher else 'lower'} is better)",
                   [r.quality.get(metric, 0) for r in self.rows])]
        fig, axes = plt.subplots(1, 3, figsize=(13, 0.45 * len(names) + 1.6), sharey=True)
        colours = ["#777777"] + ["#3b7dd8"] * (len(names) - 1)
        for ax, (title, values) in zip(axes, panels, strict=True):
            ax.barh(range(len(names)), values, color=colours)
            ax.set_title(title, fontsize=10)
            ax.grid(axis="x", alpha=0.3)
            for y, v in enumerate(values):
                ax.text(v, y, f" {v:g}", va="center", fontsize=8)
        axes[0].set_yticks(range(len(names)), labels=names, fontsize=8)
        axes[0].invert_yaxis()
        fig.suptitle(f"{self.model}: compressed variants against the original (grey)", fontsize=11)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        return buffer.getvalue()

    def html(self, png: bytes | None = None) -> str:
        header, body = self.table_rows()
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in body)
        chart = (f'<img alt="size, latency and quality of each variant" src="data:image/png;base64,'
                 f'{base64.b64encode(png).decode()}">' if png else
                 "<p><em>Install matplotlib (pip install 'plait[compress]') for the chart.</em></p>")
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>plait compress: {html.escape(self.model)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:80em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,td:nth-child(2){{text-align:left}}
img{{max-width:100%}}</style></head><body>
<h1>{html.escape(self.model)}: compressed variants</h1>
<p>{html.escape(self.quality_basis())}; peak memory of a fresh process loading and running the model.
Measured {html.escape(self.when)}, 1-minute load {self.load}.</p>
{chart}
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
<ul>{notes}</ul>
</body></html>
"""


def reports_home(settings: Settings) -> Path:
    """Where ``plait compress`` keeps its reports, one folder per run (``<model>-<date>-<time>``)."""
    return settings.home / "reports" / "compress"


def saved_reports(settings: Settings) -> list[tuple[Path, dict[str, Any]]]:
    """Each report folder with its report.json, newest first; a folder without a readable report (a run
    still measuring, or killed) is left out."""
    home = reports_home(settings)
    out = []
    for folder in sorted(home.iterdir(), reverse=True) if home.is_dir() else []:
        try:
            out.append((folder, json.loads((folder / "report.json").read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue
    return out


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:g}"


def _signed(x: float | None) -> str:
    return "-" if x is None else f"{x:+g}"


def _times(x: float | None) -> str:
    return "-" if x is None else f"{x:g}x"
