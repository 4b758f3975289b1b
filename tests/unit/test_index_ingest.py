"""Incremental ingestion with fake models: what is read, embedded, moved, copied, replaced and removed."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from plait.index import open_index
from plait.index.core import Index
from plait.runtime import Runtime
from plait.tasks.search import search
from tests.fakes import FakeEmbed


def embed_calls(rt: Runtime) -> int:
    model = rt.pool.get_as("fake-embed", FakeEmbed)
    return model.calls


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    write(root / "budget.txt", "The budget for 2024 was approved by Anna after a long meeting.\n\n"
          "It includes travel costs for the Lisbon conference.")
    write(root / "garden.md", "# Garden\n\nTomatoes grow well in a sunny corner.\n\n## Pests\n\n"
          "Aphids eat the young leaves; ladybirds eat the aphids.")
    write(root / "notes" / "recipes.txt", "Sourdough bread needs a starter, flour, water and salt.")
    return root


def chunk_texts(index: Index) -> list[str]:
    return [r[0] for r in index.store.query("SELECT text FROM index_chunks")]


def assert_consistent(index: Index) -> None:
    """SQLite, the FTS5 index and the vector index hold the same chunks, with no duplicates."""
    store = index.store
    chunk_ids = {r[0] for r in store.query("SELECT id FROM index_chunks")}
    vector_ids = {r[0] for r in store.query("SELECT chunk_id FROM index_vectors")}
    assert chunk_ids == vector_ids
    for table in ("index_fts", "index_fts_exact"):  # stemmed words, and words as written
        fts_rows = store.query(f"SELECT count(*) FROM {table}_docsize")[0][0]
        assert fts_rows == len(chunk_ids), table
        store.connection.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")
    dupes = store.query("SELECT document_id, position, count(*) FROM index_chunks "
                        "GROUP BY document_id, position HAVING count(*) > 1")
    assert not dupes
    consistency = index.check()
    assert consistency.consistent and consistency.indexed == len(chunk_ids)
    assert set(index.vectors()._ann.ids().tolist()) == chunk_ids  # type: ignore[union-attr]


def test_first_add_indexes_everything_and_rerun_reads_nothing(fake_models: Runtime, docs: Path) -> None:
    index = open_index(fake_models)
    first = index.add([docs])
    assert (first.units, first.new, first.documents_added) == (3, 3, 3)
    assert first.chunks_added == first.chunks_embedded > 0
    assert_consistent(index)
    calls = embed_calls(fake_models)

    again = index.add([docs])
    assert (again.unchanged, again.new, again.changed, again.chunks_embedded, again.chunks_added) == (3, 0, 0, 0, 0)
    assert embed_calls(fake_models) == calls


def test_touched_file_is_hashed_not_read(fake_models: Runtime, docs: Path) -> None:
    index = open_index(fake_models)
    index.add([docs])
    path = docs / "budget.txt"
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    report = index.add([docs])
    assert report.unchanged == 3 and report.changed == 0 and report.chunks_added == 0


def test_edited_file_replaces_its_chunks_everywhere(fake_models: Runtime, docs: Path) -> None:
    index = open_index(fake_models)
    index.add([docs])
    write(docs / "budget.txt", "The budget was cut by the board.\n\n"
          "It includes travel costs for the Lisbon conference.")
    report = index.add([docs])
    assert report.changed == 1 and report.documents_added == 1
    texts = " ".join(chunk_texts(index))
    assert "Anna" not in texts and "cut by the board" in texts
    for mode in ("keyword", "vector", "hybrid"):
        hits = search("Anna approved meeting", mode=mode, runtime=fake_models).hits  # type: ignore[arg-type]
        assert all("Anna" not in h.text for h in hits)
    assert search("board cut", mode="keyword", runtime=fake_models).hits[0].path.endswith("budget.txt")
    assert_consistent(index)


def test_unchanged_passages_of_an_edited_file_reuse_embeddings(fake_models: Runtime, tmp_path: Path) -> None:
    root = tmp_path / "long"
    paragraphs = [f"Paragraph {i} talks about topic{i} with enough words to stand alone as a passage "
                  f"of its own in the index, {'and more words ' * 12}" for i in range(6)]
    write(root / "long.md", "\n\n".join(f"# Part {i}\n\n{p}" for i, p in enumerate(paragraphs)))
    index = open_index(fake_models)
    first = index.add([root])
    assert first.chunks_added >= 6
    paragraphs[2] = "Paragraph 2 now says something else entirely " + "new words " * 20
    write(root / "long.md", "\n\n".join(f"# Part {i}\n\n{p}" for i, p in enumerate(paragraphs)))
    second = index.add([root])
    assert second.chunks_added == first.chunks_added
    assert second.chunks_embedded == 1 and second.chunks_reused == first.chunks_added - 1


def test_deleted_file_disappears_from_every_index(fake_models: Runtime, docs: Path) -> None:
    index = open_index(fake_models)
    index.add([docs])
    (docs / "garden.md").unlink()
    report = index.add([docs])
    assert report.deleted == 1 and report.chunks_removed > 0
    assert not any("Aphids" in t for t in chunk_texts(index))
    for mode in ("keyword", "vector", "hybrid"):
        hits = search("aphids ladybirds tomatoes", mode=mode, runtime=fake_models).hits  # type: ignore[arg-type]
        assert all(not h.path.endswith("garden.md") for h in hits)
    assert_consistent(index)


def test_moved_file_is_recognised_by_hash(fake_models: Runtime, docs: Path) -> None:
    index = open_index(fake_models)
    index.add([docs])
    calls = embed_calls(fake_models)
    chunk_ids = {r[0] for r in index.store.query("SELECT id FROM index_chunks")}
    shutil.move(docs / "notes" / "recipes.txt", docs / "kitchen.txt")
    report = index.add([docs])
    assert (report.moved, report.new, report.deleted, report.chunks_embedded) == (1, 0, 0, 0)
    assert embed_calls(fake_models) == calls
    assert {r[0] for r in index.store.query("SELECT id FROM index_chunks")} == chunk_ids
    hit = search("sourdough starter", mode="keyword", runtime=fake_models).hits[0]
    assert hit.path == str(docs / "kitchen.txt") and hit.source == str(docs / "kitchen.txt")
    assert_consistent(index)


def test_copied_file_reuses_rows_without_embedding(fake_models: Runtime, docs: Path, tmp_path: Path) -> None:
    index = open_index(fake_models)
    index.add([docs])
    calls = embed_calls(fake_models)
    other = tmp_path / "other"
    write(other / "copy.txt", (docs / "budget.txt").read_text())
    report = index.add([other], collection="work")
    assert report.copied == 1 and report.chunks_embedded == 0 and report.chunks_added > 0
    assert embed_calls(fake_models) == calls
    paths = {h.path for h in search("budget Anna", mode="keyword", runtime=fake_models).hits}
    assert paths == {str(docs / "budget.txt"), str(other / "copy.txt")}
    assert_consistent(index)


def test_crash_between_documents_leaves_no_duplicates(fake_models: Runtime, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "many"
    for i in range(30):
        write(root / f"f{i:02}.txt", f"File number {i} mentions word{i} and common words.")
    index = open_index(fake_models)
    from plait.index import ingest

    monkeypatch.setattr(ingest, "FLUSH_CHUNKS", 4)  # commit in small groups, so the crash comes mid-run
    original = ingest.Ingester._commit
    commits = {"n": 0}

    def crashing(self: ingest.Ingester, *args: object) -> None:
        commits["n"] += 1
        if commits["n"] == 11:
            raise KeyboardInterrupt  # stands in for the process dying mid-run
        original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest.Ingester, "_commit", crashing)
    with pytest.raises(KeyboardInterrupt):
        index.add([root])
    assert index.store.query("SELECT count(*) FROM index_documents")[0][0] == 10
    monkeypatch.setattr(ingest.Ingester, "_commit", original)
    report = index.add([root])
    assert index.store.query("SELECT count(*) FROM index_documents")[0][0] == 30
    # Files whose documents were all committed were finished; the two committed after the last finish
    # are re-read, their documents recognised by hash and kept (not embedded again).
    assert (report.unchanged, report.documents_kept, report.documents_added) == (8, 2, 20)
    assert index.store.query("SELECT count(*) FROM index_files WHERE state != 'indexed'")[0][0] == 0
    assert_consistent(index)


def test_vector_index_is_rebuilt_or_repaired_from_sqlite(fake_models: Runtime, docs: Path) -> None:
    index = open_index(fake_models)
    index.add([docs])
    folder = index.folder / "vectors"
    assert (folder / "current.json").exists()
    # A stale file: another process added chunks after it was saved.
    fresh = Index(fake_models)
    write(docs / "extra.txt", "Completely new text about volcanoes and lava")
    fresh.add([docs])
    stale = Index(fake_models)
    (folder / "current.json").write_text((folder / "current.json").read_text().replace('"changes": ', '"changes": 1'))
    opened = stale.vectors().last_open
    assert opened is not None and opened.consistent
    # A damaged file is rebuilt.
    for f in folder.iterdir():
        if f.suffix == ".hnsw":
            f.write_bytes(b"garbage")
    rebuilt = Index(fake_models).vectors().last_open
    assert rebuilt is not None and rebuilt.rebuilt and rebuilt.consistent
    assert search("volcanoes", mode="vector", runtime=fake_models).hits[0].path.endswith("extra.txt")


def test_exact_and_hnsw_vector_indexes_agree(fake_models: Runtime, docs: Path) -> None:
    from plait.index.vectors import VectorIndex

    index = open_index(fake_models)
    index.add([docs])
    exact = VectorIndex(index.store, index.folder / "exact", model="fake-embed", dimensions=64, exact=True)
    hnsw = VectorIndex(index.store, index.folder / "hnsw", model="fake-embed", dimensions=64, exact=False)
    exact.open()
    hnsw.open()
    query = fake_models.model("fake-embed", FakeEmbed).embed("tomatoes aphids")
    assert [i for i, _ in exact.search(query, 3)] == [i for i, _ in hnsw.search(query, 3)]
    allowed = exact.search(query, 3)[1:]
    ids = [i for i, _ in allowed]
    import numpy as np

    assert [i for i, _ in hnsw.search(query, 5, np.array(ids))] == ids


def test_remove_paths_and_collections(fake_models: Runtime, docs: Path, tmp_path: Path) -> None:
    index = open_index(fake_models)
    index.add([docs])
    write(tmp_path / "mail" / "m.txt", "A note about the quarterly report.")
    index.add([tmp_path / "mail"], collection="mail")
    removed = index.remove([docs / "notes"])
    assert removed.files == 1 and removed.chunks > 0
    assert not search("sourdough", mode="keyword", runtime=fake_models).hits
    gone = index.remove(collection="mail")
    assert gone.collections == 1 and gone.files == 1
    assert [c.name for c in index.collections()] == ["default"]
    assert_consistent(index)
    from plait.errors import InputError

    with pytest.raises(InputError, match="no collection"):
        index.remove(collection="nope")


def test_update_rescans_roots_deleted_and_unmounted(fake_models: Runtime, docs: Path, tmp_path: Path) -> None:
    index = open_index(fake_models)
    index.add([docs])
    usb = tmp_path / "media" / "usb"
    write(usb / "a.txt", "On the stick.")
    index.add([usb], collection="usb")
    single = write(tmp_path / "single.txt", "A single file about canoes")
    index.add([single], collection="single")
    write(docs / "new.txt", "A file added later about kayaks.")
    shutil.rmtree(tmp_path / "media")  # the drive is gone: its files may come back
    single.unlink()  # the file is gone, its folder is here: it was deleted
    reports = {r.collection: r for r in index.update()}
    assert reports["default"].new == 1
    assert reports["usb"].missing_roots == [str(usb)] and reports["usb"].deleted == 0
    assert reports["single"].deleted == 1 and not reports["single"].missing_roots
    assert search("kayaks", mode="keyword", runtime=fake_models).hits
    assert not search("canoes", mode="keyword", runtime=fake_models).hits
    assert search("stick", mode="keyword", runtime=fake_models).hits


def test_missing_path_changes_nothing(fake_models: Runtime, tmp_path: Path) -> None:
    from plait.errors import InputError

    with pytest.raises(InputError, match="does not exist"):
        open_index(fake_models).add([tmp_path / "nope"])


def test_fts_integrity_check_detects_a_damaged_keyword_index(fake_models: Runtime, docs: Path) -> None:
    from plait.errors import StoreError

    index = open_index(fake_models)
    index.add([docs])
    for table in ("index_fts", "index_fts_exact"):
        index.store.connection.execute(f"INSERT INTO {table} (rowid, context, text) VALUES (99999, '', 'ghost')")
        with pytest.raises(StoreError, match="rebuilt"):
            index.check()
        assert_consistent(index)  # the rebuild repaired it
    with pytest.raises(sqlite3.IntegrityError):
        index.store.connection.execute("INSERT INTO index_chunks (document_id, position, section, context, text, "
                                       "embed_hash) VALUES (424242, 0, 0, '', 'x', 'h')")


def test_two_ingestions_at_once_leave_one_copy(fake_models: Runtime, tmp_path: Path) -> None:
    import threading

    root = tmp_path / "shared"
    for i in range(40):
        write(root / f"f{i:02}.txt", f"Shared file {i} about subject{i} and more.")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            Index(fake_models).add([root])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    index = open_index(fake_models)
    index.add([root])  # settles anything the race left for a next run
    assert index.store.query("SELECT count(*) FROM index_documents")[0][0] == 40
    assert_consistent(index)


def test_progress_reports_every_unit(fake_models: Runtime, docs: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    open_index(fake_models).add([docs], progress=lambda p: seen.append((p.phase, p.units_done, p.units_total)))
    phases = [phase for phase, _, _ in seen]
    assert phases.index("indexing") < phases.index("saving")
    assert ("indexing", 3, 3) in seen or ("saving", 3, 3) in seen
