"""Search over a small real-format collection with fake models: modes, filters, MMR, snippets, ask."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from plait.errors import InputError
from plait.index import make_filters, open_index
from plait.index.terms import query_terms
from plait.runtime import Runtime
from plait.tasks.ask import ask, ask_stream
from plait.tasks.search import search
from tests.docfiles import make_mailboxes, make_pdf


@pytest.fixture
def library(fake_models: Runtime, tmp_path: Path) -> Path:
    root = tmp_path / "library"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "garden.md").write_text("# Garden\n\ntomatoes grow in the sunny corner of the garden\n")
    (root / "notes" / "bikes.txt").write_text("the bike needs new brakes and a chain before the trip\n")
    (root / "report.pdf").write_bytes(make_pdf(["revenue of the bakery grew this year"], title="Annual report"))
    (root / "mail").mkdir()
    make_mailboxes(root / "mail")
    open_index(fake_models).add([root / "notes", root / "report.pdf"], collection="files")
    open_index(fake_models).add([root / "mail"], collection="mail")
    return root


def paths(results: object) -> list[str]:
    return [Path(h.path).name for h in results.hits]  # type: ignore[attr-defined]


def test_modes_find_the_right_document(library: Path, fake_models: Runtime) -> None:
    for mode in ("keyword", "vector", "hybrid"):
        res = search("tomatoes garden", mode=mode, runtime=fake_models)  # type: ignore[arg-type]
        assert paths(res)[0] == "garden.md", mode
    hit = search("bike brakes", runtime=fake_models).hits[0]
    assert hit.keyword_rank == 1 and hit.vector_rank == 1 and hit.similarity and hit.similarity > 0.3
    assert hit.snippet.marked() .count("**") == 4  # "bike" and "brakes" highlighted


def test_filters(library: Path, fake_models: Runtime) -> None:
    def found(query: str, **filters: object) -> set[str]:
        res = search(query, k=20, filters=make_filters(**filters), runtime=fake_models)
        return {Path(h.source).name for h in res.hits}

    everything = found("lunch report budget bakery bike")
    assert {"bikes.txt", "report.pdf"} <= everything and any(s.startswith("inbox.mbox#") for s in everything)
    assert all(s.startswith(("inbox.mbox#", "Maildir#")) for s in found("lunch report", collections=["mail"]))
    assert found("bakery revenue bike", kinds=["pdf"]) == {"report.pdf"}
    assert found("bike garden bakery", path="*/notes/*") == {"bikes.txt", "garden.md"}
    eve = found("lunch report", sender="eve@example")
    assert eve and all("#" in s for s in eve)
    march6 = search("lunch report", k=20, filters=make_filters(after="2024-03-06", before="2024-03-06"),
                    runtime=fake_models).hits
    assert march6 and all(h.date and h.date.startswith("2024-03-06") for h in march6)
    assert not search("lunch", filters=make_filters(collections=["nope"]), runtime=fake_models).hits


def test_passages_and_mmr(library: Path, fake_models: Runtime) -> None:
    res = search("lunch thursday noon", k=4, per_document=False, runtime=fake_models)
    # the same message in the mbox and in the Maildir: both passages rank, MMR still returns k results
    assert len(res.hits) >= 2
    varied = search("lunch thursday noon", k=3, mmr=0.3, runtime=fake_models)
    assert len({h.chunk_id for h in varied.hits}) == len(varied.hits)


def test_bad_queries_are_input_errors(library: Path, fake_models: Runtime) -> None:
    for bad, message in (("   ", "empty"), ("x" * 5000, "characters")):
        with pytest.raises(InputError, match=message):
            search(bad, runtime=fake_models)
    with pytest.raises(InputError, match="mode"):
        search("bike", mode="fuzzy", runtime=fake_models)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="MMR"):
        search("bike", mmr=3, runtime=fake_models)


def test_empty_index_searches_return_nothing(fake_models: Runtime) -> None:
    assert search("anything", runtime=fake_models).hits == []
    assert not ask("anything at all?", runtime=fake_models).found


def test_ask_answers_from_evidence_sentences(library: Path, fake_models: Runtime) -> None:
    stream = ask_stream("the bike needs brakes", min_similarity=0.1, runtime=fake_models)
    assert stream.found and stream.sources[0].path.endswith("bikes.txt") and stream.sources[0].number == 1
    assert stream.evidence and stream.evidence[0].source == 1
    pieces = [d.text for d in stream]
    answer = stream.answer
    assert "".join(pieces).strip() == answer.text
    # The fake model echoes its prompt ("echo: Sentences: [1] …"), which is not an answer: plait's check
    # leaves it out and quotes the evidence instead.
    assert answer.rejected and "the bike needs new brakes" in answer.text and answer.text.endswith("[1:1]")
    assert answer.citations == [1]


def test_ask_says_it_does_not_know(library: Path, fake_models: Runtime) -> None:
    # The fake embedder hashes words into 64 buckets, so unrelated texts still collide a little.
    answer = ask("quantum chromodynamics lattice", min_similarity=0.5, runtime=fake_models)
    assert not answer.found and answer.sources == [] and "do not say" in answer.text


def test_without_hnswlib_vectors_are_searched_exactly(library: Path, fake_models: Runtime,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.index.core import Index

    monkeypatch.setitem(sys.modules, "hnswlib", None)
    index = Index(fake_models)
    assert index.vectors().last_open.kind == "exact"  # type: ignore[union-attr]
    from plait.index.retrieval import retrieve

    assert Path(retrieve(index, "tomatoes garden", mode="vector").hits[0].path).name == "garden.md"


@pytest.fixture
def cli(library: Path, fake_models: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The library indexed, plus a 'trips' collection added through the CLI's defaults (fake models)."""
    monkeypatch.setenv("PLAIT_EMBED_MODEL", "fake-embed")
    monkeypatch.setenv("PLAIT_CHAT_MODEL", "fake-chat")
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "kayak.txt").write_text("the kayak trip starts at dawn")
    (tmp_path / "more" / "junk.bin").write_bytes(b"\x00" * 10)
    open_index(fake_models).add([tmp_path / "more"], collection="trips")
    return tmp_path / "more"


def test_cli_index_commands(cli: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_cli import plait

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.txt").write_text("a note on sailing")
    code, out, _ = plait(capsys, "index", "add", str(tmp_path / "other"), "-c", "sea", "--json")
    assert code == 0 and json.loads(out)["new"] == 1
    code, out, _ = plait(capsys, "index", "status")
    assert code == 0 and "trips" in out and "consistent" in out and ".bin 1" in out
    code, out, _ = plait(capsys, "index", "status", "--all")
    assert "junk.bin" in out and "cannot read '.bin'" in out
    code, out, _ = plait(capsys, "index", "list")
    assert code == 0 and "trips: 1 files" in out and "mail: 2 files" in out
    (cli / "kayak.txt").write_text("the canoe trip starts at noon")
    code, out, _ = plait(capsys, "index", "update", "-c", "trips", "--json")
    assert code == 0 and json.loads(out)[0]["changed"] == 1
    code, _, err = plait(capsys, "index", "rebuild")
    assert code == 0 and "rebuilt" in err
    code, _, err = plait(capsys, "index", "remove", "-c", "trips")
    assert code == 0 and "removed collection trips, 2 files" in err  # kayak.txt and the skipped junk.bin
    code, out, _ = plait(capsys, "search", "canoe", "--json")
    assert not any(h["path"].endswith("kayak.txt") for h in json.loads(out)["hits"])
    code, _, err = plait(capsys, "index", "add", str(tmp_path / "missing"))
    assert code == 4 and "does not exist" in err and "Traceback" not in err


def test_cli_search_and_ask(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_cli import plait

    code, out, _ = plait(capsys, "search", "kayak dawn", "--json")
    hits = json.loads(out)["hits"]
    snippet = hits[0]["snippet"]
    assert code == 0 and hits[0]["path"].endswith("kayak.txt") and snippet["highlights"]
    start, end = snippet["highlights"][0]
    assert snippet["text"][start:end].lower() == "kayak"
    code, out, _ = plait(capsys, "search", "kayak", "-c", "trips", "--type", "txt", "--after", "2000-01-01")
    assert code == 0 and "kayak.txt" in out
    code, out, _ = plait(capsys, "search", "When does the kayak trip start?")
    assert code == 0 and "answers it: " in out and "answers it" not in plait(capsys, "search", "kayak dawn")[1]
    code, out, _ = plait(capsys, "search", "When does the kayak trip start?", "--no-rerank")
    assert code == 0 and "answers it" not in out
    code, out, _ = plait(capsys, "ask", "when does the kayak trip start", "--min-similarity", "0.1")
    assert code == 0 and "Sources:" in out and "kayak.txt" in out
    code, _, err = plait(capsys, "search", "kayak", "--after", "soon")
    assert code != 0 and "--after" in err


def test_the_word_as_written_outranks_other_words_of_its_stem(fake_models: Runtime, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import plait.index.keyword as keyword

    (tmp_path / "docs").mkdir()
    # "gunning" and "gun" share the stem "gun"; the short note says it twice, so stemmed BM25 prefers it.
    (tmp_path / "docs" / "fire.txt").write_text("Fire crews were called to a new fire at Gunning, south of "
                                                "Goulburn, as more than a hundred blazes burned across the state.\n")
    (tmp_path / "docs" / "gun.txt").write_text("A gun was found. The gun was old.\n")
    open_index(fake_models).add([tmp_path / "docs"])
    monkeypatch.setattr(keyword, "EXACT_WEIGHT", 0.0)
    assert paths(search("gunning", mode="keyword", runtime=fake_models))[0] == "gun.txt"
    monkeypatch.undo()
    for filters in (None, make_filters(path="*/docs/*")):
        res = search("gunning", mode="keyword", filters=filters, runtime=fake_models)
        assert paths(res) == ["fire.txt", "gun.txt"]
        assert res.hits[0].bm25 is not None and res.hits[1].bm25 is not None and res.hits[0].bm25 > res.hits[1].bm25


def test_only_a_short_query_is_also_scored_on_the_words_as_written(fake_models: Runtime, tmp_path: Path) -> None:
    import plait.index.keyword as keyword

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "fire.txt").write_text("Fire crews were called to a new fire at Gunning, south of "
                                                "Goulburn, as more than a hundred blazes burned across the state.\n")
    (tmp_path / "docs" / "gun.txt").write_text("A gun was found. The gun was old.\n")
    (tmp_path / "docs" / "hunt.txt").write_text("Hunters said the guns were gunning for ducks by the river.\n")
    index = open_index(fake_models)
    index.add([tmp_path / "docs"])
    conn = index.store.connection

    def scores(table: str, query: str) -> dict[int, float]:
        match = keyword.fts_query(query, conn)
        assert match is not None
        return keyword._bm25(conn, table, match, 100, None)

    short = "gunning goulburn"
    stemmed, exact = scores("index_fts", short), scores(keyword.EXACT_TABLE, short)
    got = {h.chunk_id: h.bm25 for h in keyword.keyword_search(conn, short, 10)}
    assert exact and got == pytest.approx(
        {c: stemmed.get(c, 0.0) + keyword.EXACT_WEIGHT * exact.get(c, 0.0) for c in stemmed.keys() | exact.keys()})
    long = "crews were gunning for the blazes near goulburn and the river"
    assert len(query_terms(long)) > keyword.SHORT_QUERY_WORDS
    hits = keyword.keyword_search(conn, long, 10)
    assert [(h.chunk_id, h.bm25) for h in hits] == list(scores("index_fts", long).items())


def test_a_question_puts_the_result_that_answers_it_first(fake_models: Runtime, tmp_path: Path) -> None:
    from plait.tasks.rerank import is_question

    assert is_question("Who leads the royal commission?") and is_question("did the council approve the budget")
    assert not is_question("royal commission building industry") and not is_question("howl of the wolves")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "hearings.txt").write_text("The royal commission into the building industry held its first public "
                                       "hearings in Melbourne today. The royal commission into the building "
                                       "industry will sit for a year.\n")
    (docs / "commissioner.txt").write_text("Unions are angry about the building industry inquiry. Commissioner "
                                           "Terence Cole leads the royal commission into the industry.\n")
    open_index(fake_models).add([docs])
    question = "Who leads the royal commission into the building industry?"
    plain = search(question, rerank=False, runtime=fake_models).hits
    assert [h.path.rsplit("/", 1)[1] for h in plain][0] == "hearings.txt"  # more of the question's words
    assert all(h.answer is None for h in plain)
    hits = search(question, runtime=fake_models).hits
    assert [h.path.rsplit("/", 1)[1] for h in hits] == ["commissioner.txt", "hearings.txt"]
    assert [h.rank for h in hits] == [1, 2] and hits[0].answer is not None and hits[1].answer is not None
    assert hits[0].answer > hits[1].answer and hits[0].score > hits[1].score
    # Words, not a question: the search's own order, nothing re-scored; a single result is cut to k.
    assert all(h.answer is None for h in search("royal commission building industry", runtime=fake_models).hits)
    assert len(search(question, k=1, runtime=fake_models).hits) == 1
