"""Tables and data: CSV/TSV and JSON/JSON Lines, as readable "field: value" text.

A row (or a JSON record) becomes one line of ``column: value`` pairs, so a summary or a search sees
what each value means. Sections group rows (``ROWS_PER_SECTION`` per section) so an index gets chunks
of related records rather than one enormous block; a JSON object's top-level keys are its sections.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plait.errors import InputError
from plait.readers.document import Document, Section, register_reader, sections_text
from plait.readers.text import read_text

ROWS_PER_SECTION = 25
MAX_DEPTH = 6  # nested JSON beyond this is shown as compact JSON


def _read_csv(path: Path) -> Iterator[Document]:
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path} is empty")
    sample = text[:64 * 1024]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    try:
        rows = [row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise InputError(f"{path} is not valid CSV ({exc})") from exc
    try:
        has_header = csv.Sniffer().has_header(sample) or _looks_like_header(rows[0])
    except (csv.Error, IndexError):
        has_header = bool(rows) and _looks_like_header(rows[0])
    if has_header and rows:
        header, body = [h.strip() or f"column {i + 1}" for i, h in enumerate(rows[0])], rows[1:]
    else:
        width = max(len(r) for r in rows)
        header, body = [f"column {i + 1}" for i in range(width)], rows
    lines = []
    for row in body:
        pairs = [f"{header[i] if i < len(header) else f'column {i + 1}'}: {cell.strip()}"
                 for i, cell in enumerate(row) if cell.strip()]
        lines.append("; ".join(pairs))
    sections = _row_sections(lines)
    metadata = {"columns": ", ".join(header), "rows": str(len(body))}
    yield Document(source=str(path), kind="csv", text=sections_text(sections), title=path.stem,
                   sections=tuple(sections), metadata=metadata)


def _looks_like_header(row: list[str]) -> bool:
    # The sniffer only says "header" when the columns below are typed differently; most files people
    # keep have a header of distinct, non-numeric names, so take that as one too.
    cells = [c.strip() for c in row]
    return all(cells) and len(set(cells)) == len(cells) and not any(_is_number(c) for c in cells)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def _row_sections(lines: list[str]) -> list[Section]:
    sections = []
    for start in range(0, len(lines), ROWS_PER_SECTION):
        chunk = lines[start:start + ROWS_PER_SECTION]
        end = start + len(chunk)
        sections.append(Section("\n".join(chunk), f"Rows {start + 1}-{end}", 1))
    return sections


def _read_json(path: Path) -> Iterator[Document]:
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path} is empty")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}, line {number}: not valid JSON ({exc.msg})") from exc
        data: Any = records
        kind = "jsonl"
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") \
                from exc
        kind = "json"
    if isinstance(data, dict):
        sections = [Section(_render(value, 0), str(key), 1) for key, value in data.items()]
        title = str(data.get("title") or data.get("name") or path.stem)
    elif isinstance(data, list):
        sections = _row_sections([_render(item, 0, inline=True) for item in data])
        title = path.stem
    else:
        sections = [Section(_render(data, 0))]
        title = path.stem
    metadata = {"records": str(len(data))} if isinstance(data, list) else {}
    yield Document(source=str(path), kind=kind, text=sections_text(sections), title=title,
                   sections=tuple(sections), metadata=metadata)


def _render(value: Any, depth: int, *, inline: bool = False) -> str:
    """A JSON value as text: objects as "key: value" (one line each, or "; "-joined when inline)."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    if depth >= MAX_DEPTH:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        parts = [f"{k}: {_render(v, depth + 1, inline=True)}" for k, v in value.items()]
        return "; ".join(parts) if inline else "\n".join(parts)
    if isinstance(value, list):
        items = [_render(v, depth + 1, inline=True) for v in value]
        if inline or all(not isinstance(v, dict | list) for v in value):
            return ", ".join(items) if inline else "\n".join(f"- {item}" for item in items)
        return "\n".join(f"- {item}" for item in items)
    return str(value)


register_reader((".csv", ".tsv"), _read_csv)
register_reader((".json", ".jsonl", ".ndjson"), _read_json)
