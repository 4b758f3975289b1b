"""HTML: the visible text, in sections by heading (h1–h6), with title, author and date from the head.

Parsed with Beautiful Soup (lxml when installed, else Python's own parser). Scripts, styles, navigation
and forms are dropped; block elements end lines so words of adjacent paragraphs are not glued together.
The encoding comes from the page's own ``<meta charset>`` when it declares one, else it is detected.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plait.errors import InputError, MissingDependency
from plait.readers.dates import iso_date
from plait.readers.document import Document, Section, register_reader, sections_text
from plait.readers.text import decode_bytes, read_bytes

DROP = ("script", "style", "noscript", "template", "nav", "form", "svg", "iframe", "head", "button")
BLOCKS = ("p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "pre",
          "li", "ul", "ol", "dl", "dt", "dd", "table", "tr", "figure", "figcaption", "address", "hr")
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_MARK = "\x00"  # never in decoded text: marks where a heading starts


@dataclass(frozen=True)
class ParsedHtml:
    title: str | None
    sections: list[Section]
    metadata: dict[str, str]


def _soup(markup: str) -> Any:
    try:
        from bs4 import BeautifulSoup
    except ImportError as exc:
        raise MissingDependency("reading HTML", extra="readers", package="beautifulsoup4") from exc
    try:
        import lxml  # noqa: F401

        return BeautifulSoup(markup, "lxml")
    except ImportError:
        return BeautifulSoup(markup, "html.parser")


def _head(soup: Any) -> tuple[str | None, dict[str, str]]:
    """The page's title and its author and date, from <title>, <meta> and <time>."""
    metadata: dict[str, str] = {}
    title = None
    if soup.title and soup.title.get_text(strip=True):
        title = soup.title.get_text(" ", strip=True)
    for meta in soup.find_all("meta"):
        name = str(meta.get("name") or meta.get("property") or "").lower()
        content = str(meta.get("content") or "").strip()
        if not content:
            continue
        if name in ("author", "article:author", "dc.creator"):
            metadata.setdefault("author", content)
        elif name in ("date", "article:published_time", "dc.date", "pubdate", "og:published_time"):
            metadata.setdefault("date", iso_date(content) or content)
        elif name in ("og:title",) and not title:
            title = content
    if "date" not in metadata:
        stamp = soup.find("time", attrs={"datetime": True})
        if stamp is not None:
            metadata["date"] = iso_date(str(stamp["datetime"])) or str(stamp["datetime"])
    return title, metadata


def parse_html(markup: str) -> ParsedHtml:
    soup = _soup(markup.replace(_MARK, ""))
    title, metadata = _head(soup)
    for tag in soup.find_all(DROP):
        tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for cell in soup.find_all(("td", "th")):
        cell.insert_after(" | ")
    for tag in soup.find_all(BLOCKS):
        if tag.name == "li":
            tag.insert_before("\n- ")
        tag.insert_after("\n")
    for tag in soup.find_all(HEADINGS):
        text = " ".join(tag.get_text(" ").split())
        tag.replace_with(f"\n{_MARK}{tag.name[1]}{_MARK}{text}\n")
    body = soup.body or soup
    raw = body.get_text("")

    sections: list[Section] = []
    parts = raw.split(_MARK)
    # parts: [text before any heading, level, heading + text, level, heading + text, ...]
    lead = _clean(parts[0])
    if lead:
        sections.append(Section(lead))
    for level, chunk in zip(parts[1::2], parts[2::2], strict=False):
        heading, _, text = chunk.partition("\n")
        sections.append(Section(_clean(text), heading.strip() or None, int(level)))
    if not title:
        title = next((s.heading for s in sections if s.heading and s.level == 1), None)
    return ParsedHtml(title, sections, metadata)


def _clean(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    lines = (re.sub(r"(\s*\|\s*)+$", "", line) for line in lines)  # the last cell's separator
    out = "\n".join(line for line in lines if line and line != "-")
    return out.strip()


def decode_html(data: bytes, name: str) -> str:
    try:
        from bs4.dammit import EncodingDetector
    except ImportError as exc:
        raise MissingDependency("reading HTML", extra="readers", package="beautifulsoup4") from exc
    declared = EncodingDetector.find_declared_encoding(data[:4096], is_html=True)
    if declared:
        try:
            return data.decode(declared, errors="replace")
        except LookupError:
            pass  # a made-up charset name: detect instead
    return decode_bytes(data, name=name)


def _read_html(path: Path) -> Iterator[Document]:
    markup = decode_html(read_bytes(path, what="HTML files"), str(path))
    if not markup.strip():
        raise InputError(f"{path} is empty")
    parsed = parse_html(markup)
    yield Document(source=str(path), kind="html", text=sections_text(parsed.sections),
                   title=parsed.title or path.stem, sections=tuple(parsed.sections), metadata=parsed.metadata)


register_reader((".html", ".htm", ".xhtml"), _read_html)
