import multiprocessing
import threading
from pathlib import Path

import pytest

from plait.store import Store
from plait.store.migrations import MIGRATIONS, migrate
from tests.homes import open_files


def test_migrations_apply_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    names = [row["name"] for row in store.query("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [name for name, _ in MIGRATIONS]
    assert migrate(store) == []  # a second run applies nothing
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    try:
        with store.transaction() as conn:
            conn.execute("INSERT INTO models (name, spec) VALUES ('x', '{}')")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert store.query("SELECT count(*) FROM models")[0][0] == 0


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc")
def test_connections_of_ended_threads_are_closed(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    try:
        for _ in range(10):  # a worker pool's threads come and go
            workers = [threading.Thread(target=store.query, args=("SELECT 1",)) for _ in range(3)]
            for t in workers:
                t.start()
            for t in workers:
                t.join()
        # This thread's and the last three workers' (until another thread opens one), not one per thread
        # that ever used it (31); SQLite may keep a closed one's descriptor while others lock the file.
        assert open_files(tmp_path / "db.sqlite") <= 4 + 3
        assert store.query("SELECT count(*) FROM models")[0][0] == 0
    finally:
        store.close()
    assert open_files(tmp_path / "db.sqlite") == 0


def _writer(path: str, worker: int, n: int) -> None:
    store = Store(Path(path))
    for i in range(n):
        with store.transaction() as conn:
            # read-then-write: the pattern that deadlocks without BEGIN IMMEDIATE
            count = conn.execute("SELECT count(*) FROM models").fetchone()[0]
            conn.execute("INSERT INTO models (name, spec) VALUES (?, ?)", (f"w{worker}-{i}", str(count)))
    store.close()


def test_several_processes_write_without_lock_errors(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    Store(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), w, 40)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert Store(path).query("SELECT count(*) FROM models")[0][0] == 160


def test_migrations_read_in_the_order_they_run_and_old_names_are_honoured(tmp_path: Path) -> None:
    import sqlite3

    from plait.store import Store
    from plait.store.migrations import FORMERLY, MIGRATIONS

    names = [name for name, _ in MIGRATIONS]
    assert names == sorted(names)
    # A database made when the migrations had their released names: nothing runs twice.
    path = tmp_path / "old.db"
    store = Store(path, key=None)  # plain SQLite, read below with the standard module
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM _migrations")
    conn.executemany("INSERT INTO _migrations VALUES (?, datetime('now'))",
                     [(FORMERLY.get(name, name),) for name in names])
    conn.commit()
    conn.close()
    store = Store(path, key=None)
    try:
        assert store.query("SELECT count(*) FROM _migrations")[0][0] == len(names)
        assert store.query("SELECT count(*) FROM index_documents")[0][0] == 0  # the schema is there, intact
    finally:
        store.close()


def test_the_exact_words_index_is_filled_from_chunks_indexed_before_it_existed(tmp_path: Path) -> None:
    import sqlite3

    from plait.index.keyword import keyword_search

    path = tmp_path / "old.db"
    Store(path, key=None).close()
    conn = sqlite3.connect(path)  # as a plait before m009 left it: chunks, and no index of exact words
    conn.execute("DROP TABLE index_fts_exact")
    for trigger in ("ai", "ad", "au"):
        conn.execute(f"DROP TRIGGER index_chunks_{trigger}_exact")
    conn.execute("DELETE FROM _migrations WHERE name = 'm009_index_exact_words'")
    conn.executemany("INSERT INTO index_chunks (document_id, position, section, context, text, embed_hash) "
                     "VALUES (1, ?, 0, '', ?, 'h')", [(0, "crews gunning the engines"), (1, "a gun, a gun")])
    conn.commit()
    conn.close()
    store = Store(path, key=None)
    try:
        assert store.query("SELECT count(*) FROM index_fts_exact_docsize")[0][0] == 2
        hits = keyword_search(store.connection, "gunning", 5)
        assert [h.chunk_id for h in hits] == [1, 2]  # the word as written first, then its stem
    finally:
        store.close()
