"""Summaries with fake models: length limits, styles, redundancy control, map-reduce and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from plait.errors import InputError
from plait.models.base import Embedder
from plait.readers.document import Document, Section
from plait.runtime import Runtime
from plait.tasks.summarize import fit_length, mmr, pack, summarize

TEXT = (
    "The city council approved the new budget for schools on Monday. "
    "The budget for schools adds money for teachers and books. "
    "The budget for schools adds money for teachers and books in every district. "
    "Critics said the plan ignores roads. "
    "The weather was mild. "
    "Schools will receive the budget money in March. "
)


def test_extractive_respects_sentence_and_word_limits(fake_models: Runtime) -> None:
    for n in (1, 2, 3):
        s = summarize(TEXT, sentences=n)
        assert len(s.points) == n and s.method == "extractive" and s.model == "fake-embed"
        # Chosen sentences keep the order of the text.
        positions = [TEXT.index(p) for p in s.points]
        assert positions == sorted(positions)
    s = summarize(TEXT, words=20)
    assert s.words <= 20 and s.max_words == 20 and s.max_sentences is None
    tiny = summarize(TEXT, words=3)  # no sentence is that short: the most central one, cut
    assert tiny.words <= 3 and tiny.text.endswith("…")


def test_extractive_skips_near_duplicates(fake_models: Runtime) -> None:
    s = summarize(TEXT, sentences=2)
    both = [p for p in s.points if p.startswith("The budget for schools adds money")]
    assert len(both) <= 1


def test_styles(fake_models: Runtime) -> None:
    bullets = summarize(TEXT, style="bullets", sentences=3)
    assert bullets.text.count("\n") == 2 and all(line.startswith("- ") for line in bullets.text.splitlines())
    line = summarize(TEXT, style="one-line")
    assert len(line.points) == 1 and line.words <= 30 and "\n" not in line.text
    default = summarize(TEXT)
    assert len(default.points) == 3


def test_document_sections_and_mail_headers(fake_models: Runtime) -> None:
    doc = Document("m.eml", "email", "", sections=(Section("From: a@b.c\nSubject: budget", "Headers", 1),
                                                    Section(TEXT, "Body", 1)))
    s = summarize(doc, sentences=6)
    assert not any("From:" in p for p in s.points)


def test_abstractive_map_reduce_and_length(fake_models: Runtime) -> None:
    # The fake chat model echoes its prompt; a long text must be cut into pieces that fit its window.
    long_text = " ".join(f"Sentence number {i} tells a small fact about the budget." for i in range(600))
    calls: list[tuple[int, int]] = []
    s = summarize(long_text, method="abstractive", sentences=2, progress=lambda d, t: calls.append((d, t)))
    assert s.chunks > 1 and s.model == "fake-chat"
    assert len(s.points) <= 2
    assert calls and calls[-1][0] == calls[-1][1]
    w = summarize(TEXT, method="abstractive", words=12)
    assert w.words <= 12


def test_bad_input(fake_models: Runtime) -> None:
    with pytest.raises(InputError, match="empty"):
        summarize("   \n ")
    with pytest.raises(InputError, match="sentences"):
        summarize(TEXT, sentences=0)
    with pytest.raises(InputError, match="MB"):
        summarize("word " * 500_000)  # 2.5 MB: over the extractive limit
    with pytest.raises(InputError, match="method"):
        summarize(TEXT, method="magic")  # type: ignore[arg-type]


def test_mmr_and_fit_length_helpers() -> None:
    vectors = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]  # rows 0 and 1 are identical
    picked = mmr(vectors, np.array([0.9, 0.89, 0.5, 0.1]), limit=2)
    assert picked == [0, 2]
    assert fit_length(["one two three.", "four five."], 5, 4) == ["one two three."]
    assert fit_length(["one two three four five six."], None, 3) == ["one two three…"]
    assert pack(["a b c", "d e f", "g h i"], lambda t: len(t.split()), 8) == ["a b c d e f", "g h i"]


def test_extractive_uses_the_named_embedder(fake_models: Runtime) -> None:
    emb = fake_models.model("fake-embed", Embedder)
    before = emb.calls  # type: ignore[attr-defined]
    summarize(TEXT, model="fake-embed")
    assert emb.calls > before  # type: ignore[attr-defined]
