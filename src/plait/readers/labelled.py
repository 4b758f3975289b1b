"""Labelled examples from a person's files: the one loader every part of plait uses (few-shot
classification, calibration, `plait tune`, `plait compress --eval`).

Layouts, the ones people already have:

- a CSV/TSV file with a header: a ``text`` column and a ``label`` column (``labels`` for multi-label,
  several labels joined by ``|`` or ``;``; ``target``/``value`` for regression); the delimiter is detected;
- a JSON Lines file (or a JSON array) of objects with the same keys;
- a folder with one sub-folder per label, each holding files any plait reader takes (text, Markdown,
  HTML, PDF, Word, ``.eml``, an mbox, or the sub-folder itself a Maildir): the folder is the label, so a
  mail client's folders ("invoices", "family"…) are labelled examples as they are;
- an instruction file (JSON Lines with ``prompt`` and ``response``) for tuning a chat model.

Each file is decoded on its own (plait's readers detect its encoding), so a folder mixing UTF-8, UTF-16
and Windows-1252 files reads correctly. A row without a label or text is an error naming the rows.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from plait.errors import InputError
from plait.readers.text import read_text

Kind = Literal["classify", "multilabel", "regress", "instruct"]
TEXT_KEYS = ("text", "content", "body", "message", "sentence")
LABEL_KEYS = ("label", "labels", "category", "class", "tag", "tags")
TARGET_KEYS = ("target", "value", "score", "rating", "y")
SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")


@dataclass(frozen=True)
class Example:
    text: str
    labels: tuple[str, ...] = ()  # classify: exactly one; multilabel: zero or more
    target: float | None = None  # regress
    response: str | None = None  # instruct: the answer the tuned model should give
    source: str = ""  # where it came from ("file.csv:12", a mail message id), for error messages


def read_examples(path: str | Path, kind: Kind = "multilabel") -> list[Example]:
    """The examples in a file or folder (see the module docstring for the layouts)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p} does not exist; give a CSV/JSONL file or a folder with one sub-folder per label")
    if p.is_dir():
        if kind in ("regress", "instruct"):
            raise InputError(f"{p} is a folder; {kind} examples come in a CSV or JSON Lines file")
        examples = _from_folder(p)
    elif p.suffix.lower() in (".csv", ".tsv"):
        examples = _from_records(_csv_records(p), kind, p)
    elif p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        examples = _from_records(_json_records(p), kind, p)
    else:
        raise InputError(f"{p}: labelled examples must be .csv, .tsv, .jsonl, .json or a folder of labelled "
                         "sub-folders")
    if not examples:
        raise InputError(f"{p} holds no examples")
    return examples


def _csv_records(path: Path) -> list[tuple[str, dict[str, str]]]:
    text = read_text(path)  # any encoding
    if not text.strip():
        raise InputError(f"{path} is empty")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else None
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:64 * 1024], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        rows = list(reader)
    except csv.Error as exc:
        raise InputError(f"{path} is not valid CSV ({exc})") from exc
    if not reader.fieldnames:
        raise InputError(f"{path} has no header row; the first row must name the columns (text, label)")
    # Line numbers as a person sees them in an editor: the header is line 1.
    return [(f"{path.name}:{i + 2}", {(k or "").strip().lower(): (v or "") for k, v in row.items()})
            for i, row in enumerate(rows)]


def _json_records(path: Path) -> list[tuple[str, dict[str, Any]]]:
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path} is empty")
    records: list[tuple[str, Any]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON ({exc})") from exc
        records = [(f"{path.name}[{i}]", item) for i, item in enumerate(data)]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"{path.name}:{number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}, line {number} is not valid JSON ({exc.msg}); fix or remove it") from exc
    out = []
    for where, item in records:
        if not isinstance(item, dict):
            raise InputError(f"{where} is not a JSON object; each example must be an object with text and label")
        out.append((where, {str(k).lower(): v for k, v in item.items()}))
    return out


def _pick(record: dict[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    for key in keys:
        if key in record:
            return key, record[key]
    return None, None


def _split_labels(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        text = str(value)
        sep = "|" if "|" in text else ";" if ";" in text else None
        items = text.split(sep) if sep else [text]
    return tuple(dict.fromkeys(s.strip() for s in items if s.strip()))


def _from_records(records: list[tuple[str, dict[str, Any]]], task: Kind, path: Path) -> list[Example]:
    if not records:
        raise InputError(f"{path} holds no rows")
    if task == "instruct":
        return _instruct_records(records, path)
    columns = set(records[0][1])
    text_key, _ = _pick(records[0][1], TEXT_KEYS)
    if text_key is None:
        raise InputError(f"{path} has no text column; name one of: {', '.join(TEXT_KEYS)} "
                         f"(found: {', '.join(sorted(columns)) or 'none'})")
    wanted = TARGET_KEYS if task == "regress" else LABEL_KEYS
    label_key, _ = _pick(records[0][1], wanted)
    if label_key is None:
        raise InputError(f"{path} has no {'target' if task == 'regress' else 'label'} column; name one of: "
                         f"{', '.join(wanted)} (found: {', '.join(sorted(columns)) or 'none'})")
    examples: list[Example] = []
    missing: list[str] = []
    empty: list[str] = []
    bad_targets: list[str] = []
    for where, record in records:
        # JSON objects may name their keys differently row by row ("label" here, "labels" there).
        text = str(_pick(record, TEXT_KEYS)[1] or "").strip()
        if not text:
            empty.append(where)
            continue
        raw = _pick(record, wanted)[1]
        if task == "regress":
            try:
                target = float(raw)
            except (TypeError, ValueError):
                (missing if raw in (None, "") else bad_targets).append(where)
                continue
            if target != target or target in (float("inf"), float("-inf")):
                bad_targets.append(where)
                continue
            examples.append(Example(text, target=target, source=where))
            continue
        labels = _split_labels(raw)
        if not labels and task == "classify":
            missing.append(where)
            continue
        if len(labels) > 1 and task == "classify":
            raise InputError(f"{where} has several labels ({', '.join(labels)}); use --task multilabel, or "
                             "give each example one label")
        examples.append(Example(text, labels=labels, source=where))
    if missing:
        raise InputError(f"{len(missing)} example(s) in {path} have no {label_key}: {_few(missing)}; "
                         "fill them in or remove those rows")
    if bad_targets:
        raise InputError(f"{len(bad_targets)} example(s) in {path} have a {label_key} that is not a number: "
                         f"{_few(bad_targets)}")
    if empty and not examples:
        raise InputError(f"every example in {path} has an empty {text_key}")
    return examples


def _instruct_records(records: list[tuple[str, dict[str, Any]]], path: Path) -> list[Example]:
    out = []
    for where, record in records:
        prompt = record.get("prompt") or record.get("instruction") or record.get("input")
        response = record.get("response") or record.get("output") or record.get("completion")
        if not isinstance(prompt, str) or not prompt.strip() or not isinstance(response, str) or not response.strip():
            raise InputError(f"{where} needs a non-empty 'prompt' and 'response'")
        out.append(Example(prompt.strip(), response=response.strip(), source=where))
    return out


def _few(items: Sequence[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _from_folder(root: Path) -> list[Example]:
    from plait.readers.document import can_read, read_documents
    from plait.readers.walk import walk

    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise InputError(f"{root} has no sub-folders; put each label's examples in a sub-folder named after "
                         "the label (e.g. invoices/, family/)")
    examples: list[Example] = []
    skipped: list[str] = []
    for folder in subfolders:
        label = folder.name
        for entry in walk(folder):
            if entry.error is not None or not (entry.store or can_read(entry.path)):
                skipped.append(str(entry.path.relative_to(root)))
                continue
            try:
                for doc in read_documents(entry.path):
                    if doc.text.strip():
                        examples.append(Example(doc.text.strip(), labels=(label,), source=doc.source))
            except InputError as exc:
                raise InputError(f"cannot read example {entry.path}: {exc}") from exc
    if not examples:
        raise InputError(f"no readable examples under {root}"
                         + (f" (skipped unreadable files: {_few(skipped)})" if skipped else ""))
    return examples
