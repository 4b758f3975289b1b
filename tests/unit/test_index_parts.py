"""The index's pure parts: chunking, FTS5 query building, rank fusion, MMR, snippets, filters."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from plait.errors import InputError
from plait.index.chunking import chunk_document
from plait.index.filters import make_filters
from plait.index.fusion import best_per_group, convex, first_per_group, rrf
from plait.index.keyword import fts_query
from plait.index.mmr import mmr
from plait.index.snippets import parse_marked
from plait.index.terms import query_terms
from plait.readers.document import Document, Section


def doc(*sections: Section, kind: str = "md") -> Document:
    return Document(source="/x", kind=kind, text="\n\n".join(s.text for s in sections), sections=sections)


def sentences(n: int, word: str = "word") -> str:
    return " ".join(f"This is sentence {i} with some {word} filler text here." for i in range(n))


def test_chunks_follow_headings_and_respect_size() -> None:
    d = doc(Section(sentences(12, "alpha"), "Intro", 1), Section(sentences(40, "beta"), "Details", 1),
            Section(sentences(10, "gamma"), "Sub", 2))
    chunks = chunk_document(d, max_words=120, overlap_words=20, min_words=30)
    assert all(len(c.text.split()) <= 120 for c in chunks)
    assert chunks[0].heading == "Intro" and "alpha" in chunks[0].text and "beta" not in chunks[0].text
    assert any(c.heading == "Details > Sub" and "gamma" in c.text for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    details = [c for c in chunks if c.heading == "Details"]
    assert len(details) >= 3
    for a, b in zip(details, details[1:], strict=False):
        # consecutive chunks of one section share their boundary sentence(s)
        from plait.readers.sentences import sentences as split

        assert split(a.text)[-1] in b.text and not b.text.startswith(a.text[:40])


def test_small_sections_merge_with_the_next_and_keep_their_heading() -> None:
    mail = doc(Section("From: Anna\nSubject: Budget", "Headers", 1),
               Section(sentences(5, "budget"), "Body", 1), kind="email")
    chunks = chunk_document(mail)
    assert len(chunks) == 1 and chunks[0].text.startswith("From: Anna") and "budget" in chunks[0].text
    assert chunks[0].heading is None and "Body" not in chunks[0].text  # mail labels are not headings
    md = doc(Section("Short intro.", "A", 1), Section(sentences(8, "main"), "B", 1))
    [chunk] = chunk_document(md)
    assert chunk.heading == "A" and "\nB\n" in chunk.text


def test_a_paragraph_without_sentence_ends_is_cut_by_words() -> None:
    [*chunks] = chunk_document(doc(Section("word " * 500)), max_words=100, overlap_words=10)
    assert len(chunks) == 5 and all(len(c.text.split()) <= 100 for c in chunks)
    assert chunk_document(doc(Section("   "))) == []


def test_embed_text_carries_title_and_heading() -> None:
    [chunk] = chunk_document(doc(Section(sentences(3), "Costs", 1)))
    assert chunk.embed_text("Plan 2024").startswith("Plan 2024 > Costs\n")
    assert chunk.embed_text(None).startswith("Costs\n")


def test_fts_queries_are_always_valid_fts5() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61 remove_diacritics 2')")
    conn.execute("INSERT INTO t VALUES ('the budget was approved by anna near the end')")
    for q in ['budget AND "', "NEAR(anna budget)", "anna's budget?", "-budget", "budget*", "x:y", "((( budget",
              '"approved by anna" costs', "naïve café", "to be or not to be"]:
        expr = fts_query(q)
        assert expr is not None
        conn.execute("SELECT * FROM t WHERE t MATCH ?", (expr,)).fetchall()  # never a syntax error
    conn.execute("INSERT INTO t VALUES ('anna approved the plan; the budget came later')")

    def ranked(q: str) -> list[int]:
        return [r[0] for r in conn.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t)", (fts_query(q),))]

    # A quoted phrase ranks the passage that has it as it is first, but its words still count one by one:
    # a pasted sentence with a quotation in it is not a phrase search.
    assert ranked('"approved by anna"') == [1, 2]
    assert ranked('"anna approved"') == [2, 1]
    assert sorted(ranked('"the committee approved by anna," she said')) == [1, 2]  # no such phrase: words
    # A word said twice counts twice (BM25 over the query's term frequencies).
    assert fts_query("budget budget plan") == '"budget" OR "plan" OR "budget"'
    assert fts_query("?!") is None and fts_query("(((") is None
    assert query_terms("What did Anna say about the budget?") == ["anna", "say", "budget"]
    assert query_terms("to be or not to be") == ["to", "be", "or", "not"]


def test_fusion_prefers_agreement_and_groups_by_document() -> None:
    fused = rrf([["a", "b", "c"], ["b", "c", "d"]])
    assert [item for item, _ in fused][:2] == ["b", "c"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert first_per_group([1, 2, 3, 4], {1: "x", 2: "x", 3: "y", 4: "x"}) == [1, 3]
    assert best_per_group([(1, 0.2), (2, 0.9), (3, 0.5)], {1: "x", 2: "x", 3: "y"}) == [(2, 0.9), (3, 0.5)]


def test_convex_fusion_keeps_score_gaps() -> None:
    # BM25 is scaled by the query's best BM25: "b", far ahead on words and close on meaning, wins over
    # "a", first on meaning by a hair; rank fusion would have tied them.
    fused = convex({"a": 0.60, "b": 0.58, "c": 0.30}, {"b": 12.0, "a": 3.0}, vector_weight=0.8)
    assert [item for item, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == pytest.approx(0.8 * 0.58 + 0.2 * 1.0)
    assert dict(fused)["c"] == pytest.approx(0.8 * 0.30)  # no keyword match: BM25 counts 0
    assert [i for i, _ in convex({"a": 0.5, "b": 0.6}, {})] == ["b", "a"]  # no keyword results at all
    assert [i for i, _ in convex({"a": 0.5, "b": 0.6}, {"a": 5.0}, vector_weight=0.0)] == ["a", "b"]


def test_mmr_trades_relevance_for_variety() -> None:
    v = np.array([[1, 0], [0.999, 0.0447], [0, 1]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    relevance = [1.0, 0.95, 0.5]
    assert mmr(relevance, v, 2, lam=1.0) == [0, 1]
    assert mmr(relevance, v, 2, lam=0.5) == [0, 2]
    assert mmr([], v[:0], 3) == []


def test_snippet_markers_become_spans() -> None:
    s = parse_marked("the \x02budget\x03 was \x02approved\x03")
    assert s.text == "the budget was approved" and s.highlights == ((4, 10), (15, 23))
    assert s.marked("[", "]") == "the [budget] was [approved]"


def test_filters_validate_and_build_sql() -> None:
    f = make_filters(collections="mail", kinds=["PDF"], after="2024-01-01", before="2024-01-31", sender="50%_x")
    where, params = f.sql()
    assert "k.name IN (?)" in where and params[0] == "mail" and "pdf" in params
    assert "2024-02-01" in params and r"%50\%\_x%" in params
    assert make_filters().empty
    with pytest.raises(InputError, match="later than"):
        make_filters(after="2024-02-01", before="2024-01-01")
    with pytest.raises(InputError, match="bad search filter"):
        make_filters(after="yesterday")


def test_a_replys_quotes_are_indexed_with_their_own_message_and_signatures_not_at_all() -> None:
    from plait.readers.mail import parse_message

    reply = (b"From: Bo <bo@example.org>\nSubject: Re: Budget\nMessage-ID: <b@x>\nIn-Reply-To: <a@x>\n\n"
             b"The venue is booked for Friday.\n\nOn Mon, Anna <anna@example.org> wrote:\n> Who books the venue?\n"
             b"\n-- \nBo Berg, Example Ltd\n")
    chunks = " ".join(c.text for c in chunk_document(parse_message(reply, "r.eml")))
    assert "venue is booked" in chunks and "Who books" not in chunks and "Example Ltd" not in chunks
    # Without In-Reply-To/References the quoted message is indexed nowhere else: it stays with this one.
    alone = reply.replace(b"In-Reply-To: <a@x>\n", b"")
    assert "Who books" in " ".join(c.text for c in chunk_document(parse_message(alone, "r.eml")))
