"""The ingester's embedding executor hook, without Ray: an executor that keeps flushes in flight writes the
same index as the local path (chunks, order, vectors, copies of identical files), and a job that fails
mid-run leaves no duplicates and a rerun embeds only what is missing."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plait.index import ingest
from plait.index.core import Index
from plait.index.executors import EmbeddingExecutor, EmbeddingJob, LocalEmbedding, Progress
from plait.runtime import Runtime
from tests.corpora import lee_articles, lee_sentences
from tests.fakes import fake_runtime

SNAPSHOT = ("SELECT d.source, c.position, c.text, v.vector FROM index_chunks c JOIN index_documents d "
            "ON d.id = c.document_id JOIN index_vectors v ON v.chunk_id = c.id ORDER BY d.source, c.position")


class Later:
    """A job computed only when it is collected, in the order the ingester collects it."""

    def __init__(self, executor: Windowed, texts: list[str]) -> None:
        self.executor, self.texts = executor, texts

    def result(self) -> np.ndarray:
        self.executor.collected.append(self.texts)
        if len(self.executor.collected) == self.executor.fail_at:
            raise ConnectionError("the worker went away")
        vectors: np.ndarray = self.executor.index.embedder().embed_many(self.texts)
        return vectors


class Windowed(EmbeddingExecutor):
    def __init__(self, index: Index, window: int, fail_at: int = 0) -> None:
        self.index, self.window, self.fail_at = index, window, fail_at
        self.submitted: list[list[str]] = []
        self.collected: list[list[str]] = []

    def submit(self, texts: Sequence[str], progress: Progress | None = None) -> EmbeddingJob:
        self.submitted.append(list(texts))
        return Later(self, list(texts))


class Recording(LocalEmbedding):
    def __init__(self, index: Index) -> None:
        super().__init__(index)
        self.submitted: list[list[str]] = []

    def submit(self, texts: Sequence[str], progress: Progress | None = None) -> EmbeddingJob:
        self.submitted.append(list(texts))
        return super().submit(texts, progress)


def corpus(folder: Path) -> Path:
    folder.mkdir()
    sentences = list(lee_sentences())
    for i, article in enumerate(lee_articles()[:40]):
        (folder / f"a{i:03d}.txt").write_text(article)
    for i in range(0, 240, 4):
        (folder / f"s{i:03d}.txt").write_text(" ".join(sentences[i:i + 4]))
    for i in range(0, 40, 5):  # identical files (copied from their twin) and edited copies (texts reused)
        shutil.copy(folder / f"a{i:03d}.txt", folder / f"z-copy{i:03d}.txt")
        (folder / f"z-edit{i:03d}.txt").write_text((folder / f"a{i:03d}.txt").read_text() + "\n\nEdited.")
    return folder


def snapshot(rt: Runtime) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in rt.store.query(SNAPSHOT)]


@pytest.fixture
def small_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "FLUSH_CHUNKS", 8)


@pytest.mark.parametrize("window", [1, 3, 8])
def test_flushes_in_flight_write_the_same_index_as_the_local_path(tmp_path: Path, small_flushes: None,
                                                                   window: int) -> None:
    docs = corpus(tmp_path / "docs")
    local, windowed = fake_runtime(tmp_path / "local"), fake_runtime(tmp_path / "windowed")
    recording = Recording(Index(local))
    expected = Index(local).add([docs], executor=recording)
    executor = Windowed(Index(windowed), window)
    report = Index(windowed).add([docs], executor=executor)
    assert executor.submitted == recording.submitted  # the same flushes, so the same batches and vectors
    assert executor.collected == executor.submitted  # collected in the order submitted
    assert len(executor.submitted) > window + 2
    assert snapshot(windowed) == snapshot(local)
    for field in ("chunks_added", "chunks_embedded", "chunks_reused", "copied", "new", "documents_added"):
        assert getattr(report, field) == getattr(expected, field), field
    assert report.copied >= 8  # the copies, and an article the Lee corpus holds twice
    states = windowed.store.query("SELECT state, count(*) FROM index_files GROUP BY state")
    assert {r[0]: r[1] for r in states} == {"indexed": report.units}


def test_a_job_lost_mid_run_leaves_no_duplicate_and_a_rerun_embeds_only_the_rest(tmp_path: Path,
                                                                                small_flushes: None) -> None:
    docs = corpus(tmp_path / "docs")
    complete = fake_runtime(tmp_path / "complete")
    expected = Index(complete).add([docs])
    rt = fake_runtime(tmp_path / "home")
    with pytest.raises(ConnectionError):
        Index(rt).add([docs], executor=Windowed(Index(rt), 3, fail_at=6))
    before = rt.store.query("SELECT count(*), count(DISTINCT embed_hash) FROM index_chunks")[0]
    assert 0 < before[0] < expected.chunks_added
    dupes = rt.store.query("SELECT count(*) - count(DISTINCT document_id || ':' || position) FROM index_chunks")
    assert dupes[0][0] == 0
    rerun = Index(rt).add([docs])
    assert rerun.chunks_embedded == expected.chunks_embedded - before[1]
    assert snapshot(rt) == snapshot(complete)



def test_a_copy_of_a_partly_read_file_in_flight_is_read_and_committed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose identical twin is still in flight waits for it; when the twin turns out only partly read
    (so not a source to copy from), the file is read itself, and its documents are committed even when it
    comes last, after everything else was drained."""
    import mailbox

    from tests.docfiles import PLAIN_MAIL

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A note about the bakery's quarterly numbers.")
    box = mailbox.mbox(str(docs / "b.mbox"))  # two messages read, one not: partial
    box.add(PLAIN_MAIL)
    box.add(b"this entry has no headers at all\n\njust a broken body\n")
    box.add(PLAIN_MAIL.replace(b"Lunch", b"Dinner").replace(b"lunch", b"dinner"))
    box.close()
    shutil.copy(docs / "b.mbox", docs / "c.mbox")
    # The note's chunk and the mailbox's two fill a flush, so the mailbox is in flight when its copy comes;
    # the copy's two chunks alone do not: they are still pending once every flush is drained.
    monkeypatch.setattr(ingest, "FLUSH_CHUNKS", 3)
    local, windowed = fake_runtime(tmp_path / "local"), fake_runtime(tmp_path / "windowed")
    expected = Index(local).add([docs])
    report = Index(windowed).add([docs], executor=Windowed(Index(windowed), 3))
    assert sorted(Path(s.path).name for s in report.partial) == ["b.mbox", "c.mbox"]
    assert report.chunks_added == expected.chunks_added == 5
    assert snapshot(windowed) == snapshot(local)
    per_file = windowed.store.query("SELECT f.path, count(d.id) FROM index_files f LEFT JOIN index_documents d "
                                    "ON d.file_id = f.id GROUP BY f.id")
    assert {Path(r[0]).name: r[1] for r in per_file} == {"a.txt": 1, "b.mbox": 2, "c.mbox": 2}
