"""plait.adapt data handling and evaluation: loading each layout, bad input, splits, imbalance, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from plait.adapt import evaluate
from plait.adapt.datasets import (
    Dataset,
    Example,
    class_weights,
    length_stats,
    load_dataset,
    oversample,
    stratified_split,
)
from plait.errors import InputError


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "text,label") -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header.split(","))
        writer.writerows(rows)
    return path


def test_csv_with_labels_and_length_stats(tmp_path: Path) -> None:
    rows = [(f"invoice number {i} is overdue", "billing") for i in range(4)] + \
           [(f"see you at dinner on day {i}", "family") for i in range(3)]
    ds = load_dataset(write_csv(tmp_path / "mail.csv", rows))
    assert ds.labels == ("billing", "family") and len(ds) == 7
    assert ds.counts() == {"billing": 4, "family": 3}
    stats = length_stats(ds)
    assert stats.examples == 7 and stats.chars_min <= stats.chars_median <= stats.chars_max
    assert stats.per_label == {"billing": 4, "family": 3}


def test_jsonl_multilabel_and_regression(tmp_path: Path) -> None:
    path = tmp_path / "tags.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"text": "budget meeting on friday", "labels": ["work", "calendar"]},
        {"text": "mum's birthday", "labels": "family|calendar"},
        {"text": "quarterly report", "labels": ["work"]},
    ]) + "\n", encoding="utf-8")
    ds = load_dataset(path, "multilabel")
    assert ds.labels == ("calendar", "family", "work")
    assert ds.label_matrix().tolist() == [[1, 0, 1], [1, 1, 0], [0, 0, 1]]
    reg = tmp_path / "scores.csv"
    write_csv(reg, [("great film", "4.5"), ("dull", "1"), ("fine", "3")], header="text,rating")
    ds = load_dataset(reg, "regress")
    assert ds.targets().tolist() == [4.5, 1.0, 3.0]


def test_folder_per_label_reads_mixed_encodings_and_mail(tmp_path: Path) -> None:
    root = tmp_path / "mail"
    (root / "invoices").mkdir(parents=True)
    (root / "family").mkdir()
    (root / "invoices" / "a.txt").write_bytes("Facture impayée: 120 €".encode("cp1252"))
    (root / "invoices" / "b.txt").write_bytes("Rechnung über 40 €".encode("utf-16"))
    (root / "invoices" / "c.eml").write_bytes(
        b"From: shop@example.com\r\nTo: me@example.com\r\nSubject: Your invoice\r\n\r\nPlease pay 30 EUR.\r\n")
    (root / "family" / "d.txt").write_text("Dinner at grandma's on Sunday?", encoding="utf-8")
    maildir = root / "family" / "box"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.msg").write_bytes(b"From: mum@example.com\nSubject: Hi\n\nCall me tonight.\n")
    ds = load_dataset(root)
    texts = {e.labels[0]: [] for e in ds.examples}
    for e in ds.examples:
        texts[e.labels[0]].append(e.text)
    assert any("impayée" in t and "€" in t for t in texts["invoices"])  # cp1252 decoded
    assert any("Rechnung über" in t for t in texts["invoices"])  # UTF-16 decoded
    assert any("Please pay 30 EUR" in t for t in texts["invoices"])  # .eml body
    assert any("Call me tonight" in t for t in texts["family"])  # Maildir message
    assert ds.counts() == {"family": 2, "invoices": 3}


def test_missing_labels_are_named(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "m.csv", [("a text", "x"), ("no label here", ""), ("another", "y"), ("more", "")])
    with pytest.raises(InputError, match=r"2 example\(s\).*m.csv:3, m.csv:5.*fill them in"):
        load_dataset(path)


def test_bad_files_and_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="no text column"):
        load_dataset(write_csv(tmp_path / "a.csv", [("x", "y")], header="body2,label"))
    with pytest.raises(InputError, match="no label column"):
        load_dataset(write_csv(tmp_path / "b.csv", [("x", "y")], header="text,whatever"))
    bad = tmp_path / "c.jsonl"
    bad.write_text('{"text": "ok", "label": "a"}\n{"text": broken\n', encoding="utf-8")
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        load_dataset(bad)
    with pytest.raises(InputError, match="only one label"):
        load_dataset(write_csv(tmp_path / "d.csv", [("x", "a"), ("y", "a")]))
    with pytest.raises(InputError, match="several labels"):
        load_dataset(write_csv(tmp_path / "e.csv", [("x", "a|b"), ("y", "a")]))
    with pytest.raises(InputError, match="not a number"):
        load_dataset(write_csv(tmp_path / "f.csv", [("x", "high"), ("y", "2")], header="text,target"), "regress")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no sub-folders"):
        load_dataset(tmp_path / "empty")


def test_label_with_one_example_cannot_be_split(tmp_path: Path) -> None:
    rows = [(f"billing text {i}", "billing") for i in range(5)] + [("the only family one", "family")]
    ds = load_dataset(write_csv(tmp_path / "one.csv", rows))
    with pytest.raises(InputError, match=r"'family' \(1\).*at least 3"):
        stratified_split(ds)


def test_duplicates_dropped_with_conflicts_noted(tmp_path: Path) -> None:
    rows = [("Same  text", "a"), ("same text", "a"), ("SAME TEXT", "b"), ("other", "b")]
    ds = load_dataset(write_csv(tmp_path / "dup.csv", rows))
    assert len(ds) == 2
    assert ds.notes and "dropped 2 duplicate" in ds.notes[0] and "1 of them with a different label" in ds.notes[0]


def _dataset(counts: dict[str, int]) -> Dataset:
    examples = tuple(Example(f"{label} example {i}", labels=(label,)) for label, n in counts.items() for i in range(n))
    return Dataset("classify", examples, tuple(sorted(counts)))


def test_stratified_split_keeps_every_label_everywhere_and_is_seeded() -> None:
    ds = _dataset({"a": 40, "b": 6, "c": 3})
    split = stratified_split(ds, seed=1)
    for part in (split.train, split.validation, split.test):
        assert set(part.counts().values()) != {0} and all(n >= 1 for n in part.counts().values())
    assert len(split.train) + len(split.validation) + len(split.test) == len(ds)
    assert not set(split.train.texts) & set(split.test.texts)
    assert stratified_split(ds, seed=1).test.texts == split.test.texts
    assert stratified_split(ds, seed=2).test.texts != split.test.texts
    assert split.test.counts()["a"] == 6  # 15% of 40


def test_oversample_and_class_weights() -> None:
    ds = _dataset({"a": 9, "b": 1})
    assert class_weights(ds) == pytest.approx([10 / 18, 10 / 2])
    balanced = oversample(ds, seed=0)
    assert balanced.counts() == {"a": 9, "b": 9}
    assert oversample(ds, seed=0).texts == balanced.texts


def test_classification_report_and_thresholds() -> None:
    labels = ("spam", "ham")
    y = np.array([0, 0, 1, 1, 1, 1])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7], [0.45, 0.55], [0.1, 0.9]])
    rep = evaluate.classification_report(labels, y, proba)
    assert rep.accuracy == pytest.approx(5 / 6)
    assert rep.per_label["spam"].recall == pytest.approx(0.5) and rep.per_label["ham"].recall == 1.0
    assert rep.confusion == [[1, 1], [0, 4]]
    assert 0 <= rep.ece <= 1
    # A minority label under-predicted at argmax: a tuned threshold recovers it.
    t = evaluate.tune_thresholds(proba, y)
    assert sum(t) == pytest.approx(1.0)
    tuned = evaluate.classification_report(labels, y, proba, t)
    assert tuned.macro_f1 > rep.macro_f1 and tuned.per_label["spam"].recall == 1.0
    assert set(tuned.thresholds) == set(labels)


def test_multiclass_thresholds_never_hurt_validation() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    logits = rng.normal(size=(60, 3))
    logits[np.arange(60), y] += 0.8
    logits[:, 0] += 0.7  # a bias towards label 0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    t = evaluate.tune_thresholds(proba, y)
    before = evaluate.classification_report("abc", y, proba).macro_f1
    after = evaluate.classification_report("abc", y, proba, t).macro_f1
    assert after >= before


def test_multilabel_and_regression_reports() -> None:
    truth = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    proba = np.array([[0.9, 0.2], [0.6, 0.4], [0.1, 0.8], [0.3, 0.1]])
    rep = evaluate.multilabel_report(("x", "y"), truth, proba)
    assert rep.per_label["x"].recall == 1.0 and rep.per_label["y"].recall == 0.5
    t = evaluate.tune_multilabel_thresholds(proba, truth)
    assert evaluate.multilabel_report(("x", "y"), truth, proba, t).macro_f1 == 1.0
    r = evaluate.regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert r.rmse == pytest.approx(np.sqrt(4 / 3)) and r.mae == pytest.approx(2 / 3)
