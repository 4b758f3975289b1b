"""Training data for `plait tune`: labelled examples (read by :mod:`plait.readers.labelled`) cleaned of
duplicates, checked and split.

Problems that would silently spoil training (a label with too few examples to split, one label only) are
errors that say what to do.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from plait.errors import InputError
from plait.readers.labelled import Example, Kind, read_examples

Task = Kind  # what a tuned model learns: classify, multilabel, regress or instruct
# A label needs one example in each of train, validation and test.
MIN_PER_LABEL = 3


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
    examples = read_examples(p, task)
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
