"""The mail digest as a person reads it: Markdown and a standalone HTML page, one section per need."""

from __future__ import annotations

import html
from typing import Any

from plait.workflows.sinks.digest import safe_link

SECTION_TITLES = {"urgent": "Urgent", "asks": "Asks something of you", "work": "Work", "personal": "Personal",
                  "unsure": "Unsure", "discussion": "Discussion", "newsletter": "Newsletters"}


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
