"""Labelled examples from a person's files: loading, cleaning, splitting.

Sources (:func:`load_dataset`):

- a CSV/TSV file with a header: a ``text`` column and a ``label`` column (``labels`` for multi-label,
  several labels joined by ``|`` or ``;``; ``target``/``value`` for regression);
- a JSON Lines file (or a JSON array) of objects with the same keys;
- a folder with one sub-folder per label, each holding files any plait reader takes (text, Markdown,
  HTML, PDF, Word, ``.eml``, an mbox, or the sub-folder itself a Maildir): the folder is the label, so a
  mail client's folders ("invoices", "family"…) are a training set as they are;
- an instruction file (JSON Lines with ``prompt`` and ``response``) for tuning a chat model.

Each file is decoded on its own (plait's readers detect its encoding), so a folder mixing UTF-8, UTF-16
and Windows-1252 files reads correctly. Problems that would silently spoil training (a row without a
label, a label with too few examples to split) are errors that say which rows and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from plait.errors import InputError
from plait.readers.text import read_text

Task = Literal["classify", "multilabel", "regress", "instruct"]
TEXT_KEYS = ("text", "content", "body", "message", "sentence")
LABEL_KEYS = ("label", "labels", "category", "class", "tag", "tags")
TARGET_KEYS = ("target", "value", "score", "rating", "y")
# A label needs one example in each of train, validation and test.
MIN_PER_LABEL = 3


@dataclass(frozen=True)
class Example:
    text: str
    labels: tuple[str, ...] = ()  # classify: exactly one; multilabel: zero or more
    target: float | None = None  # regress
    response: str | None = None  # instruct: the answer the tuned model should give
    source: str = ""  # where it came from ("file.csv:12", a mail message id), for error messages


@dataclass(frozen=True)
class Dataset:
    task: Task
    examples: tuple[Example, ...]
    labels: tuple[str, ...] = ()  # sorted; empty for regress/instruct
    source: str = ""
    notes: tuple[str, ...] = ()  # what loading changed (duplicates dropped…), shown to the user

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    def label_index(self) -> list[int]:
        """Single-label tasks: each example's label as an index into ``labels``."""
        index = {label: j for j, label in enumerate(self.labels)}
        return [index[e.labels[0]] for e in self.examples]

    def label_matrix(self) -> Any:
        """(n, k) 0/1 float32 matrix of labels (any classification task)."""
        import numpy as np

        index = {label: j for j, label in enumerate(self.labels)}
        out = np.zeros((len(self.examples), len(self.labels)), dtype=np.float32)
        for i, e in enumerate(self.examples):
            for label in e.labels:
                out[i, index[label]] = 1.0
        return out

    def targets(self) -> Any:
        import numpy as np

        return np.array([e.target for e in self.examples], dtype=np.float32)

    def subset(self, indices: Sequence[int]) -> Dataset:
        return replace(self, examples=tuple(self.examples[i] for i in indices))

    def counts(self) -> dict[str, int]:
        counter = Counter(label for e in self.examples for label in e.labels)
        return {label: counter.get(label, 0) for label in self.labels}

    def fingerprint(self) -> str:
        """SHA-256 of the examples (order-independent): two runs on the same data share it."""
        rows = sorted(json.dumps([e.text, list(e.labels), e.target, e.response]) for e in self.examples)
        digest = hashlib.sha256()
        digest.update(self.task.encode())
        for row in rows:
            digest.update(row.encode())
            digest.update(b"\n")
        return digest.hexdigest()


@dataclass(frozen=True)
class LengthStats:
    examples: int
    chars_min: int
    chars_median: float
    chars_p95: float
    chars_max: int
    words_median: float
    per_label: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"examples": self.examples, "chars_min": self.chars_min, "chars_median": self.chars_median,
                "chars_p95": self.chars_p95, "chars_max": self.chars_max, "words_median": self.words_median,
                "per_label": self.per_label}


def length_stats(dataset: Dataset) -> LengthStats:
    if not dataset.examples:
        return LengthStats(0, 0, 0.0, 0.0, 0, 0.0)
    chars = sorted(len(e.text) for e in dataset.examples)
    words = [len(e.text.split()) for e in dataset.examples]
    p95 = chars[min(len(chars) - 1, round(0.95 * (len(chars) - 1)))]
    return LengthStats(len(chars), chars[0], float(statistics.median(chars)), float(p95), chars[-1],
                       float(statistics.median(words)), dataset.counts())


# Loading -------------------------------------------------------------------------------------------


def load_dataset(path: str | Path, task: Task = "classify", *, dedupe: bool = True) -> Dataset:
    """Read labelled examples from a file or folder (see the module docstring for the layouts)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p} does not exist; give a CSV/JSONL file or a folder with one sub-folder per label")
    if p.is_dir():
        if task in ("regress", "instruct"):
            raise InputError(f"{p} is a folder; a {task} task needs a CSV or JSON Lines file")
        examples = _from_folder(p, task)
    elif p.suffix.lower() in (".csv", ".tsv"):
        examples = _from_records(_csv_records(p), task, p)
    elif p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        examples = _from_records(_json_records(p), task, p)
    else:
        raise InputError(f"{p}: training data must be .csv, .tsv, .jsonl, .json or a folder of labelled "
                         "sub-folders")
    if not examples:
        raise InputError(f"{p} holds no examples")
    notes: list[str] = []
    if dedupe:
        examples, note = _dedupe(examples)
        if note:
            notes.append(note)
    labels: tuple[str, ...] = ()
    if task in ("classify", "multilabel"):
        labels = tuple(sorted({label for e in examples for label in e.labels}))
        if len(labels) < 2 and task == "classify":
            raise InputError(f"{p} has only one label ({', '.join(labels) or 'none'}); a classifier needs "
                             "two or more")
    return Dataset(task, tuple(examples), labels, str(p), tuple(notes))


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


def _from_records(records: list[tuple[str, dict[str, Any]]], task: Task, path: Path) -> list[Example]:
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
        text = str(record.get(text_key) or "").strip()
        if not text:
            empty.append(where)
            continue
        raw = record.get(label_key)
        if task == "regress":
            try:
                target = float(raw)  # type: ignore[arg-type]
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


def _from_folder(root: Path, task: Task) -> list[Example]:
    from plait.readers import can_read, read_documents
    from plait.readers.mail import is_maildir

    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        raise InputError(f"{root} has no sub-folders; put each label's examples in a sub-folder named after "
                         "the label (e.g. invoices/, family/)")
    examples: list[Example] = []
    skipped: list[str] = []
    for folder in subfolders:
        label = folder.name
        items = _label_items(folder, is_maildir)
        for item in items:
            if not can_read(item):
                skipped.append(str(item.relative_to(root)))
                continue
            try:
                for doc in read_documents(item):
                    if doc.text.strip():
                        examples.append(Example(doc.text.strip(), labels=(label,), source=doc.source))
            except InputError as exc:
                raise InputError(f"cannot read training example {item}: {exc}") from exc
    if not examples:
        raise InputError(f"no readable examples under {root}"
                         + (f" (skipped unreadable files: {_few(skipped)})" if skipped else ""))
    return examples


def _label_items(folder: Path, is_maildir: Any) -> list[Path]:
    """Files under a label folder at any depth; a Maildir (the folder itself or inside it) is one item."""
    if is_maildir(folder):
        return [folder]
    items: list[Path] = []
    for child in sorted(folder.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            items += _label_items(child, is_maildir)
        elif child.is_file():
            items.append(child)
    return items


def _dedupe(examples: list[Example]) -> tuple[list[Example], str]:
    """Drop repeated texts (compared with case and spacing ignored), keeping the first."""
    seen: dict[str, Example] = {}
    conflicts = 0
    for e in examples:
        key = " ".join(e.text.split()).casefold()
        if key in seen:
            first = seen[key]
            if (first.labels, first.target, first.response) != (e.labels, e.target, e.response):
                conflicts += 1
            continue
        seen[key] = e
    dropped = len(examples) - len(seen)
    if not dropped:
        return examples, ""
    note = f"dropped {dropped} duplicate text(s)"
    if conflicts:
        note += f", {conflicts} of them with a different label than the first copy (the first was kept)"
    return list(seen.values()), note


# Splitting -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    train: Dataset
    validation: Dataset
    test: Dataset


def check_label_counts(dataset: Dataset, minimum: int = MIN_PER_LABEL) -> None:
    if dataset.task not in ("classify", "multilabel"):
        return
    counts = dataset.counts()
    few = {label: n for label, n in counts.items() if n < minimum}
    if few:
        listed = ", ".join(f"'{label}' ({n})" for label, n in sorted(few.items()))
        raise InputError(f"label(s) with fewer than {minimum} examples: {listed}; each label needs at least "
                         f"{minimum} (one each for training, validation and test): add examples or remove "
                         "the label")


def stratified_split(dataset: Dataset, *, validation: float = 0.15, test: float = 0.15, seed: int = 0) -> Split:
    """Train/validation/test with each label's share kept in every part (by the first label for multi-label).

    Every label gets at least one example in each part; the rest follow the fractions.
    """
    if not 0 <= validation < 1 or not 0 <= test < 1 or validation + test >= 1:
        raise InputError("validation and test fractions must be between 0 and 1 and leave room for training")
    rng = random.Random(seed)
    groups: dict[Any, list[int]] = defaultdict(list)
    for i, e in enumerate(dataset.examples):
        key = e.labels[0] if e.labels else (_target_bin(dataset, e.target) if e.target is not None else None)
        groups[key].append(i)
    if dataset.task in ("classify", "multilabel"):
        check_label_counts(dataset)
    elif len(dataset) < MIN_PER_LABEL * 2:
        raise InputError(f"{len(dataset)} examples are too few to train and check a model; give at least "
                         f"{MIN_PER_LABEL * 2}")
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for key in sorted(groups, key=str):
        idx = groups[key]
        rng.shuffle(idx)
        n = len(idx)
        n_test = max(1 if test and n >= 3 else 0, round(n * test))
        n_val = max(1 if validation and n >= 3 else 0, round(n * validation))
        n_test, n_val = min(n_test, max(0, n - 1)), min(n_val, max(0, n - 1 - min(n_test, n - 1)))
        parts["test"] += idx[:n_test]
        parts["validation"] += idx[n_test:n_test + n_val]
        parts["train"] += idx[n_test + n_val:]
    for name in parts:
        parts[name].sort()
    return Split(dataset.subset(parts["train"]), dataset.subset(parts["validation"]), dataset.subset(parts["test"]))


def _target_bin(dataset: Dataset, target: float) -> int:
    # Regression: stratify on quintiles of the target so each part spans its range.
    values = sorted(e.target for e in dataset.examples if e.target is not None)
    cuts = [values[int(len(values) * q / 5)] for q in range(1, 5)]
    return sum(target >= c for c in cuts)


def oversample(dataset: Dataset, *, seed: int = 0) -> Dataset:
    """Repeat examples of the smaller labels (at random, with replacement) up to the largest label's count."""
    if dataset.task != "classify":
        raise InputError("oversampling applies to single-label classification")
    rng = random.Random(seed)
    by_label: dict[str, list[Example]] = defaultdict(list)
    for e in dataset.examples:
        by_label[e.labels[0]].append(e)
    most = max(len(v) for v in by_label.values())
    out = list(dataset.examples)
    for items in by_label.values():
        out += [rng.choice(items) for _ in range(most - len(items))]
    rng.shuffle(out)
    return replace(dataset, examples=tuple(out))


def class_weights(dataset: Dataset) -> list[float]:
    """Inverse-frequency weights, ``n / (k * n_label)`` (scikit-learn's "balanced"), in ``labels`` order."""
    counts = dataset.counts()
    n, k = len(dataset), len(dataset.labels)
    return [n / (k * counts[label]) if counts[label] else 0.0 for label in dataset.labels]
