"""Labelled examples from files, for few-shot classification (and calibration).

Three layouts, the ones people already have:

- CSV (``.csv``/``.tsv``) with a header naming a ``text`` column and a ``label`` (or ``labels``) column;
  several labels in one cell are separated by ``|``;
- JSON lines (``.jsonl``) or a JSON list (``.json``) of objects ``{"text": ..., "label": ...}`` or
  ``{"text": ..., "labels": [...]}``;
- a folder with one sub-folder per label, each holding text files (any format plait reads).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from plait.errors import InputError
from plait.tasks.classifiers import Example

TEXT_KEYS = ("text", "content", "body", "message")
LABEL_KEYS = ("label", "labels", "category", "class", "tag", "tags")


def read_examples(path: str | Path) -> list[Example]:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist")
    if p.is_dir():
        examples = _from_folders(p)
    else:
        from plait.readers.text import read_text

        content = read_text(p)
        suffix = p.suffix.lower()
        if suffix in (".csv", ".tsv"):
            examples = _from_csv(content, p, "\t" if suffix == ".tsv" else ",")
        elif suffix in (".jsonl", ".ndjson"):
            examples = [_from_object(_json(line, p, n), p, n)
                        for n, line in enumerate(content.splitlines(), 1) if line.strip()]
        elif suffix == ".json":
            data = _json(content, p, 1)
            if not isinstance(data, list):
                raise InputError(f"{p}: expected a JSON list of {{\"text\", \"label\"}} objects")
            examples = [_from_object(item, p, n) for n, item in enumerate(data, 1)]
        else:
            raise InputError(f"{p}: examples must be a .csv, .tsv, .jsonl or .json file, or a folder with one "
                             "sub-folder of texts per label")
    if not examples:
        raise InputError(f"{p} holds no labelled examples")
    return examples


def _json(text: str, path: Path, n: int) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{path}:{n}: not valid JSON ({exc})") from exc


def _labels(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        labels = tuple(part.strip() for part in value.split("|") if part.strip())
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        labels = tuple(v.strip() for v in value if v.strip())
    else:
        raise InputError(f"{where}: a label must be a string or a list of strings")
    if not labels:
        raise InputError(f"{where}: the example has no label")
    return labels


def _from_object(item: Any, path: Path, n: int) -> Example:
    where = f"{path}:{n}"
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected an object with \"text\" and \"label\"")
    text_key = next((k for k in TEXT_KEYS if k in item), None)
    label_key = next((k for k in LABEL_KEYS if k in item), None)
    if text_key is None or label_key is None:
        raise InputError(f"{where}: expected keys \"text\" and \"label\" (or \"labels\")")
    text = item[text_key]
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: the text is empty")
    return text, _labels(item[label_key], where)


def _from_csv(content: str, path: Path, delimiter: str) -> list[Example]:
    reader = csv.DictReader(io.StringIO(content), delimiter=delimiter)
    fields = {name.strip().lower(): name for name in reader.fieldnames or []}
    text_col = next((fields[k] for k in TEXT_KEYS if k in fields), None)
    label_col = next((fields[k] for k in LABEL_KEYS if k in fields), None)
    if text_col is None or label_col is None:
        raise InputError(f"{path}: the header must name a text column and a label column "
                         f"(found: {', '.join(reader.fieldnames or []) or 'no header'})")
    out = []
    for n, row in enumerate(reader, 2):
        text = (row.get(text_col) or "").strip()
        if not text:
            raise InputError(f"{path}:{n}: the text is empty")
        out.append((text, _labels(row.get(label_col) or "", f"{path}:{n}")))
    return out


def _from_folders(root: Path) -> list[Example]:
    from plait.readers.document import READERS, read_documents

    out: list[Example] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in READERS):
            for doc in read_documents(file):
                if doc.text.strip():
                    out.append((doc.text, (folder.name,)))
    return out
