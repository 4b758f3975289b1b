"""Markdown: plain text as a person reads it, in sections by heading.

Parsed with markdown-it-py (CommonMark, plus tables), so emphasis, links and code markers do not leak
into the text and a ``#`` inside a code block is not taken for a heading. A leading front-matter block
(``---`` … ``---``) gives title, date and author.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plait.errors import MissingDependency
from plait.readers.document import Document, Section, register_reader, sections_text
from plait.readers.text import read_text

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)


def _front_matter(source: str) -> tuple[dict[str, str], str]:
    """The YAML front matter's simple ``key: value`` fields, and the text after it."""
    front: dict[str, str] = {}
    match = _FRONT_MATTER.match(source)
    if not match:
        return front, source
    for line in match.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t")):
            front[key.strip().lower()] = value.strip().strip("\"'")
    return front, source[match.end():]


def parse_markdown(source: str) -> tuple[list[Section], dict[str, str]]:
    """Sections (one per heading; text before the first heading has none) and front-matter fields."""
    try:
        from markdown_it import MarkdownIt
    except ImportError as exc:  # pragma: no cover - rich (a core dependency) brings markdown-it-py
        raise MissingDependency("reading Markdown", package="markdown-it-py") from exc
    front, source = _front_matter(source)
    tokens = MarkdownIt("commonmark").enable("table").parse(source)

    sections: list[Section] = []
    heading: str | None = None
    level = 0
    blocks: list[str] = []
    row: list[str] = []  # cells of the table row being read
    table: list[str] = []  # rows of the table being read
    list_depth = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind == "heading_open":
            if blocks or heading is not None:
                sections.append(Section("\n\n".join(blocks), heading, level))
            level = int(tok.tag[1:])
            heading = _inline_text(tokens[i + 1]) if i + 1 < len(tokens) else ""
            blocks = []
            i += 3  # heading_open, inline, heading_close
            continue
        if kind in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif kind == "inline" and _in_table_cell(tokens, i):
            row.append(_inline_text(tok))
        elif kind == "tr_close":
            table.append(" | ".join(row))
            row = []
        elif kind == "table_close":
            blocks.append("\n".join(table))
            table = []
        elif kind == "inline":
            text = _inline_text(tok)
            if list_depth and text:
                text = "  " * (list_depth - 1) + "- " + text
            if text:
                blocks.append(text)
        elif kind in ("fence", "code_block", "html_block") and tok.content.strip():
            blocks.append(tok.content.rstrip("\n"))
        i += 1
    if blocks or heading is not None:
        sections.append(Section("\n\n".join(blocks), heading, level))
    # List items are blocks of their own; join consecutive ones with single newlines, as written.
    sections = [Section(_tighten_lists(s.text), s.heading, s.level) for s in sections]
    return sections, front


def _in_table_cell(tokens: list[Any], i: int) -> bool:
    return i > 0 and tokens[i - 1].type in ("th_open", "td_open")


def _inline_text(tok: Any) -> str:
    parts: list[str] = []
    for child in tok.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append(" ")
        elif child.type == "hardbreak":
            parts.append("\n")
        elif child.type == "image":
            alt = child.content or "".join(c.content for c in child.children or [])
            if alt:
                parts.append(alt)
    return "".join(parts).strip()


def _tighten_lists(text: str) -> str:
    return re.sub(r"\n\n(?=\s*- )", "\n", text)


def _read_markdown(path: Path) -> Iterator[Document]:
    source = read_text(path)
    sections, front = parse_markdown(source)
    title = front.get("title") or next((s.heading for s in sections if s.heading and s.level == 1), None)
    metadata = {k: front[k] for k in ("author", "date", "subject") if front.get(k)}
    if "date" in metadata:
        from plait.readers.dates import iso_date

        metadata["date"] = iso_date(metadata["date"]) or metadata["date"]
    yield Document(source=str(path), kind="md", text=sections_text(sections), title=title or path.stem,
                   sections=tuple(sections), metadata=metadata)


register_reader((".md", ".markdown", ".mdown", ".mkd"), _read_markdown)
