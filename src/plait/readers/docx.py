"""Word documents (.docx): paragraphs and tables in order, in sections by heading style.

Read with python-docx. Headings are the paragraphs styled "Heading N" or "Title"; tables become one
line per row with cells joined by " | ". Title, author, subject and dates come from the core properties.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plait.errors import InputError, MissingDependency
from plait.readers.dates import iso_date
from plait.readers.document import Document, Section, register_reader, sections_text
from plait.readers.text import read_bytes

MAX_DOCX_BYTES = 200 * 1024 * 1024
_HEADING = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def read_docx_bytes(data: bytes, name: str) -> Document:
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
    except ImportError as exc:
        raise MissingDependency("reading Word files", extra="readers", package="python-docx") from exc
    if not data.startswith(b"PK"):
        raise InputError(f"{name} is not a .docx file (old .doc files are not supported; save as .docx)")
    try:
        document = docx.Document(io.BytesIO(data))
        sections, title_para = _sections(document)
        props = document.core_properties
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputError(f"{name} is damaged or not a Word document ({type(exc).__name__}: {exc})") from exc
    metadata: dict[str, str] = {}
    if props.author:
        metadata["author"] = props.author
    if props.subject:
        metadata["subject"] = props.subject
    if props.created:
        metadata["date"] = iso_date(props.created) or ""
    if props.modified:
        metadata["modified"] = iso_date(props.modified) or ""
    metadata = {k: v for k, v in metadata.items() if v}
    title = props.title or title_para
    return Document(source=name, kind="docx", text=sections_text(sections), title=title or None,
                    sections=tuple(sections), metadata=metadata)


def _sections(document: Any) -> tuple[list[Section], str | None]:
    from docx.table import Table

    sections: list[Section] = []
    heading: str | None = None
    level = 0
    lines: list[str] = []
    title: str | None = None
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines.extend(_table_lines(block))
            continue
        text = block.text.strip()
        style = (block.style.name if block.style is not None else "") or ""
        match = _HEADING.match(style)
        is_title = style.lower() == "title"
        if (match or is_title) and text:
            if is_title:
                title = title or text
            if lines or heading is not None:
                sections.append(Section("\n".join(lines), heading, level))
            heading, level, lines = text, int(match.group(1)) if match else 1, []
        elif text:
            if style.lower().startswith("list"):
                text = "- " + text
            lines.append(text)
    if lines or heading is not None:
        sections.append(Section("\n".join(lines), heading, level))
    if title is None:
        title = next((s.heading for s in sections if s.heading and s.level == 1), None)
    return sections, title


def _table_lines(table: Any) -> list[str]:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            if not cells or cells[-1] != text:  # merged cells repeat their text once per grid cell
                cells.append(text)
        if any(cells):
            lines.append(" | ".join(cells))
    return lines


def _read_docx(path: Path) -> Iterator[Document]:
    doc = read_docx_bytes(read_bytes(path, limit=MAX_DOCX_BYTES, what="Word files"), str(path))
    yield doc if doc.title else Document(doc.source, doc.kind, doc.text, path.stem, doc.sections, doc.metadata)


register_reader((".docx",), _read_docx)
