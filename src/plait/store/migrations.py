"""Named, append-only schema migrations.

Each migration is a function registered in order under a unique name that reads in that order (``m001_…``,
``m002_…``); the ``_migrations`` table records which names have run. Never edit or reorder a released
migration: add a new one at the end, numbered after the last. A migration renamed after release keeps its
old name as ``formerly``, so a database that recorded it under that name does not run it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait.store.database import Store

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []
FORMERLY: dict[str, str] = {}  # a migration's current name → the name it was released under


def migration(*, formerly: str | None = None) -> Callable[[Migration], Migration]:
    def register(fn: Migration) -> Migration:
        name = fn.__name__
        if any(name == existing for existing, _ in MIGRATIONS):
            raise ValueError(f"duplicate migration name {name}")
        if MIGRATIONS and name <= MIGRATIONS[-1][0]:
            raise ValueError(f"migration {name} must sort after {MIGRATIONS[-1][0]}: number it in order")
        MIGRATIONS.append((name, fn))
        if formerly:
            FORMERLY[name] = formerly
        return fn
    return register


def _execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Run SQL statements one by one, inside the migration's transaction.

    Not ``executescript``: it commits first, which would break the migration's transaction.
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""


def unknown_migrations(conn: sqlite3.Connection) -> list[str]:
    """Migrations recorded in the database that this plait does not have: it was written by a newer one."""
    known = {name for name, _ in MIGRATIONS} | set(FORMERLY.values())  # released names count as known
    return sorted(row[0] for row in conn.execute("SELECT name FROM _migrations") if row[0] not in known)


def migrate(store: Store) -> list[str]:
    """Apply the migrations not yet applied; returns their names. Safe when processes race to do it.

    A database that a newer plait migrated is refused before anything is written to it: this plait would
    not know its new tables and columns, and could damage what the newer one keeps there."""
    from plait.store.failures import NewerDatabase

    conn = store.connection
    conn.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied: list[str] = []
    with store.transaction(durable=True):  # the write lock serialises concurrent migrators
        if newer := unknown_migrations(conn):
            raise NewerDatabase(f"{store.path} was written by a newer plait (schema changes {', '.join(newer)} "
                                "are unknown here); upgrade plait, or use another PLAIT_HOME")
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        for name, fn in MIGRATIONS:
            if name not in done and FORMERLY.get(name) not in done:
                fn(conn)
                conn.execute("INSERT INTO _migrations VALUES (?, datetime('now'))", (name,))
                applied.append(name)
    return applied


@migration()
def m001_models(conn: sqlite3.Connection) -> None:
    # User catalog entries; built-ins are resolved from installed packages and never stored.
    conn.execute(
        """CREATE TABLE models (
            name TEXT PRIMARY KEY,
            spec TEXT NOT NULL,          -- the ModelSpec as JSON
            created_at TEXT NOT NULL DEFAULT (datetime('now'))
        )"""
    )


@migration(formerly="m200_serve_api_keys")
def m002_serve_api_keys(conn: sqlite3.Connection) -> None:
    # Server API keys. Only a SHA-256 of each secret is kept: secrets are 256-bit random tokens, so a
    # fast hash is enough (no password stretching needed) and a stolen database reveals no usable key.
    conn.execute(
        """CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,              -- short public id, shown by `plait keys list`
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE, -- hex SHA-256 of the secret
            prefix TEXT NOT NULL,             -- first characters of the secret, to recognise it
            scopes TEXT NOT NULL,             -- space-separated: chat tasks index admin
            rate_limit INTEGER,               -- requests per minute; NULL or 0: no limit
            created_at TEXT NOT NULL DEFAULT (datetime('now')),
            last_used_at TEXT,
            revoked_at TEXT
        )"""
    )


@migration(formerly="m100_index_schema")
def m003_index_schema(conn: sqlite3.Connection) -> None:
    # The personal index. These tables are the store of record; the FTS5 table is kept in step by
    # triggers inside the same transactions, and the vector index (a file) is derived from index_vectors.
    script = """
        CREATE TABLE index_collections (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL DEFAULT (datetime('now'))
        );
        CREATE TABLE index_roots (           -- the paths `plait index add` was given, re-scanned by update
            collection_id INTEGER NOT NULL REFERENCES index_collections(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            added_at TEXT NOT NULL DEFAULT (datetime('now')),
            PRIMARY KEY (collection_id, path)
        );
        CREATE TABLE index_files (            -- one per file, or per folder read as one store (Maildir)
            id INTEGER PRIMARY KEY,
            collection_id INTEGER NOT NULL REFERENCES index_collections(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            hash TEXT,                        -- content hash once fully processed; NULL while pending
            state TEXT NOT NULL,              -- pending | indexed | partial | skipped
            skip_kind TEXT,                   -- unsupported | missing-dependency | too-large | unreadable
            reason TEXT,
            updated_at TEXT NOT NULL DEFAULT (datetime('now')),
            UNIQUE (collection_id, path)
        );
        CREATE INDEX index_files_hash ON index_files(hash);
        CREATE TABLE index_documents (        -- one per file, or per message of a mailbox
            id INTEGER PRIMARY KEY,
            file_id INTEGER NOT NULL REFERENCES index_files(id) ON DELETE CASCADE,
            source TEXT NOT NULL,
            kind TEXT NOT NULL,
            title TEXT,
            date TEXT,                        -- ISO 8601 (UTC when the source had a zone), else file time
            sender TEXT,
            metadata TEXT NOT NULL,           -- JSON object of the reader's metadata
            hash TEXT NOT NULL,               -- of the document's content: unchanged documents are kept
            UNIQUE (file_id, source)
        );
        CREATE INDEX index_documents_date ON index_documents(date);
        CREATE TABLE index_chunks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so the vector index can trust ids
            document_id INTEGER NOT NULL REFERENCES index_documents(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,        -- order within the document
            section INTEGER NOT NULL,         -- index of the document section the chunk starts in
            heading TEXT,                     -- heading path, "Budget > 2024"
            context TEXT NOT NULL,            -- title and heading: a keyword-index column
            text TEXT NOT NULL,
            embed_hash TEXT NOT NULL          -- of the embedded text: equal text reuses the embedding
        );
        CREATE INDEX index_chunks_document ON index_chunks(document_id);
        CREATE INDEX index_chunks_embed_hash ON index_chunks(embed_hash);
        CREATE TABLE index_vectors (          -- float32 little-endian, unit length
            chunk_id INTEGER PRIMARY KEY REFERENCES index_chunks(id) ON DELETE CASCADE,
            vector BLOB NOT NULL
        );
        CREATE VIRTUAL TABLE index_fts USING fts5(
            context, text, content='index_chunks', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TABLE index_state (            -- one row; `changes` counts chunk inserts and deletes
            id INTEGER PRIMARY KEY CHECK (id = 1),
            changes INTEGER NOT NULL,
            embed_model TEXT,
            dimensions INTEGER
        );
        INSERT INTO index_state (id, changes) VALUES (1, 0);
        CREATE TRIGGER index_chunks_ai AFTER INSERT ON index_chunks BEGIN
            INSERT INTO index_fts (rowid, context, text) VALUES (new.id, new.context, new.text);
            UPDATE index_state SET changes = changes + 1 WHERE id = 1;
        END;
        CREATE TRIGGER index_chunks_ad AFTER DELETE ON index_chunks BEGIN
            INSERT INTO index_fts (index_fts, rowid, context, text) VALUES ('delete', old.id, old.context, old.text);
            UPDATE index_state SET changes = changes + 1 WHERE id = 1;
        END;
        CREATE TRIGGER index_chunks_au AFTER UPDATE OF context, text ON index_chunks BEGIN
            INSERT INTO index_fts (index_fts, rowid, context, text) VALUES ('delete', old.id, old.context, old.text);
            INSERT INTO index_fts (rowid, context, text) VALUES (new.id, new.context, new.text);
        END;
        """
    _execute_script(conn, script)


@migration(formerly="m400_adapt_runs")
def m004_adapt_runs(conn: sqlite3.Connection) -> None:
    # Training runs of `plait tune`: one row per run (kept when it fails or is interrupted, so a person
    # sees what was tried), and its metrics per epoch. TensorBoard event files and plots live in run_dir.
    conn.execute(
        """CREATE TABLE adapt_runs (
            id TEXT PRIMARY KEY,             -- time-ordered, e.g. 20250101-120000-ab12
            name TEXT NOT NULL,              -- the model name being tuned (triage)
            task TEXT NOT NULL,              -- classify | multilabel | regress | instruct
            method TEXT NOT NULL,            -- head | finetune | lora
            status TEXT NOT NULL,            -- running | completed | failed | interrupted
            data_hash TEXT NOT NULL,         -- SHA-256 of the examples
            data_source TEXT,
            params TEXT NOT NULL,            -- JSON: the training configuration
            hardware TEXT NOT NULL,          -- JSON: CPU, cores, threads, memory, library versions
            metrics TEXT,                    -- JSON: final metrics on the test split
            model TEXT,                      -- the catalog entry it produced (triage@2), once registered
            run_dir TEXT NOT NULL,
            error TEXT,
            started_at TEXT NOT NULL DEFAULT (datetime('now')),
            finished_at TEXT,
            duration_s REAL
        )"""
    )
    conn.execute("CREATE INDEX adapt_runs_name ON adapt_runs(name, started_at)")
    conn.execute(
        """CREATE TABLE adapt_run_metrics (
            run_id TEXT NOT NULL REFERENCES adapt_runs(id) ON DELETE CASCADE,
            epoch INTEGER NOT NULL,
            split TEXT NOT NULL,             -- train | validation | test
            key TEXT NOT NULL,               -- loss, accuracy, macro_f1, recall/LABEL…
            value REAL NOT NULL,
            PRIMARY KEY (run_id, epoch, split, key)
        )"""
    )


@migration(formerly="m300_workflows_state")
def m005_workflows_state(conn: sqlite3.Connection) -> None:
    # Workflows: every item a trigger produced, each step's state and output per item, the sinks' ledger of
    # effects (so each happens once), trigger cursors, one lock per workflow, and what digest/.ics sinks
    # gather before rendering. Times are Unix seconds from the engine's clock (tests control it).
    script = """
        CREATE TABLE workflow_runs (
            id INTEGER PRIMARY KEY,
            workflow TEXT NOT NULL,
            kind TEXT NOT NULL,               -- run | watch | retry | backfill | up
            status TEXT NOT NULL,             -- running | finished | failed | interrupted | stopped
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            finished_at REAL,
            items_added INTEGER NOT NULL DEFAULT 0,
            items_done INTEGER NOT NULL DEFAULT 0,
            items_failed INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE INDEX workflow_runs_workflow ON workflow_runs(workflow, id);
        CREATE TABLE workflow_items (
            id INTEGER PRIMARY KEY,
            workflow TEXT NOT NULL,
            key TEXT NOT NULL,                -- stable id from the trigger: a message, file version, fire time
            data TEXT NOT NULL,               -- JSON object the trigger produced
            at REAL,                          -- the item's own time (mail date, file mtime), for --since
            state TEXT NOT NULL,              -- pending | running | done | failed | skipped
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            next_attempt_at REAL,             -- pending items wait until then (retry backoff)
            run_id INTEGER,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (workflow, key)
        );
        CREATE INDEX workflow_items_state ON workflow_items(workflow, state, next_attempt_at);
        CREATE TABLE workflow_steps (
            item_id INTEGER NOT NULL REFERENCES workflow_items(id) ON DELETE CASCADE,
            step TEXT NOT NULL,               -- step path: "label", "people[2].note"
            state TEXT NOT NULL,              -- running | done | skipped | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            output TEXT,                      -- JSON
            error TEXT,
            spec_hash TEXT NOT NULL,          -- of the step's definition: an edited step runs again
            started_at REAL,
            finished_at REAL,
            PRIMARY KEY (item_id, step)
        );
        CREATE TABLE workflow_effects (       -- the sinks' ledger: one row per effect, written once
            workflow TEXT NOT NULL,
            item_key TEXT NOT NULL,
            step TEXT NOT NULL,
            sink TEXT NOT NULL,
            detail TEXT,                      -- JSON: what was written, moved, sent
            run_id INTEGER,
            created_at REAL NOT NULL,
            PRIMARY KEY (workflow, item_key, step)
        );
        CREATE TABLE workflow_cursors (
            workflow TEXT PRIMARY KEY,
            trigger TEXT NOT NULL,
            cursor TEXT NOT NULL,             -- JSON: where the trigger stopped (UIDs, offsets, fire times)
            updated_at REAL NOT NULL
        );
        CREATE TABLE workflow_locks (         -- one process runs a workflow at a time
            workflow TEXT PRIMARY KEY,
            run_id INTEGER NOT NULL,
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            heartbeat_at REAL NOT NULL
        );
        CREATE TABLE workflow_entries (       -- gathered by digest and .ics sinks, rendered into files
            workflow TEXT NOT NULL,
            sink TEXT NOT NULL,               -- the sink step's path
            target TEXT NOT NULL,             -- the file (or period) the entry belongs to
            item_key TEXT NOT NULL,
            at REAL NOT NULL,
            data TEXT NOT NULL,               -- JSON
            PRIMARY KEY (workflow, sink, item_key)
        );
        CREATE INDEX workflow_entries_target ON workflow_entries(workflow, sink, target);
        CREATE TABLE workflow_renders (       -- when each gathered file was last written
            workflow TEXT NOT NULL,
            sink TEXT NOT NULL,
            target TEXT NOT NULL,
            rendered_at REAL NOT NULL,
            PRIMARY KEY (workflow, sink, target)
        );
        CREATE TABLE workflow_webhook_keys (  -- a key per workflow for its webhook route; SHA-256 only
            workflow TEXT PRIMARY KEY,
            secret_hash TEXT NOT NULL,
            prefix TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """
    _execute_script(conn, script)


@migration()
def m006_web_page(conn: sqlite3.Connection) -> None:
    script = """
        CREATE TABLE web_signin_tokens (      -- one-time links that open the web page; SHA-256 only
            token_hash TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        );
        CREATE TABLE web_sessions (           -- a browser signed in by a token link; SHA-256 only
            id TEXT PRIMARY KEY,
            secret_hash TEXT NOT NULL UNIQUE,
            csrf TEXT NOT NULL,               -- the page sends it back on every change it asks for
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL,
            model TEXT,
            system TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE conversation_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            model TEXT,                       -- the model that wrote an answer
            stopped INTEGER NOT NULL DEFAULT 0,  -- the answer was stopped before its end
            created_at REAL NOT NULL
        );
        CREATE INDEX conversation_messages_conversation ON conversation_messages(conversation_id, id);
        CREATE TABLE today_decisions (        -- what the person decided about a proposal of a workflow
            workflow TEXT NOT NULL,
            sink TEXT NOT NULL,
            item_key TEXT NOT NULL,
            decision TEXT NOT NULL CHECK (decision IN ('accept', 'decline')),
            decided_at REAL NOT NULL,
            PRIMARY KEY (workflow, sink, item_key)
        );
        """
    _execute_script(conn, script)


@migration()
def m007_security_audit(conn: sqlite3.Connection) -> None:
    # The audit log (plait.security.audit): append-only, enforced by triggers; `chain` is a SHA-256 over the
    # row and the chain value of the row before, so a row changed or removed outside plait is detected.
    script = """
        CREATE TABLE security_audit (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,                 -- Unix seconds
            kind TEXT NOT NULL,               -- request | egress | auth_failure | alert
            key TEXT,                         -- the API key's id ('-' without auth, 'webhook:NAME')
            key_name TEXT,
            client TEXT,                      -- the client's address
            method TEXT,
            route TEXT,                       -- the route's template, /v1/workflows/{name}
            status INTEGER,
            task TEXT,
            model TEXT,
            bytes_in INTEGER NOT NULL DEFAULT 0,
            bytes_out INTEGER NOT NULL DEFAULT 0,
            ms REAL NOT NULL DEFAULT 0,
            detail TEXT,                      -- JSON: passages read, what left for which backend, an alert
            chain TEXT NOT NULL
        );
        CREATE INDEX security_audit_key ON security_audit(key, at);
        CREATE INDEX security_audit_kind ON security_audit(kind, at);
        CREATE TRIGGER security_audit_no_update BEFORE UPDATE ON security_audit BEGIN
            SELECT RAISE(ABORT, 'the audit log is append-only');
        END;
        CREATE TRIGGER security_audit_no_delete BEFORE DELETE ON security_audit BEGIN
            SELECT RAISE(ABORT, 'the audit log is append-only');
        END;
        CREATE TABLE security_vault (         -- redaction placeholders kept so the owner can restore a text
            vault TEXT NOT NULL,
            placeholder TEXT NOT NULL,        -- <PERSON_1>
            entity TEXT NOT NULL,
            value TEXT NOT NULL,              -- the personal data it stands for
            created_at REAL NOT NULL,
            PRIMARY KEY (vault, placeholder)
        );
        """
    _execute_script(conn, script)


@migration()
def m008_eval_runs(conn: sqlite3.Connection) -> None:
    # plait eval's results, one row per run (see plait.evaluation.history); JSON columns for the settings,
    # metrics and sizes, whose keys grow with new metrics.
    _execute_script(conn, """
        CREATE TABLE eval_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started_at TEXT NOT NULL,
            seconds REAL NOT NULL,
            collection TEXT,
            embed_model TEXT NOT NULL,
            chat_model TEXT NOT NULL,
            settings TEXT NOT NULL,
            metrics TEXT NOT NULL,
            sizes TEXT NOT NULL
        );
        """)


@migration()
def m009_index_exact_words(conn: sqlite3.Connection) -> None:
    # A second keyword index over the same chunks, of the words as written (no stemming): keyword search
    # adds its BM25 to the stemmed index's, so a passage with the query's own word form ranks above one with
    # only a word of the same stem ("gunning" is stemmed to "gun"; see plait.index.keyword). Filled from the
    # chunks already indexed; kept in step by its own triggers.
    _execute_script(conn, """
        CREATE VIRTUAL TABLE index_fts_exact USING fts5(
            context, text, content='index_chunks', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER index_chunks_ai_exact AFTER INSERT ON index_chunks BEGIN
            INSERT INTO index_fts_exact (rowid, context, text) VALUES (new.id, new.context, new.text);
        END;
        CREATE TRIGGER index_chunks_ad_exact AFTER DELETE ON index_chunks BEGIN
            INSERT INTO index_fts_exact (index_fts_exact, rowid, context, text)
                VALUES ('delete', old.id, old.context, old.text);
        END;
        CREATE TRIGGER index_chunks_au_exact AFTER UPDATE OF context, text ON index_chunks BEGIN
            INSERT INTO index_fts_exact (index_fts_exact, rowid, context, text)
                VALUES ('delete', old.id, old.context, old.text);
            INSERT INTO index_fts_exact (rowid, context, text) VALUES (new.id, new.context, new.text);
        END;
        INSERT INTO index_fts_exact (index_fts_exact) VALUES ('rebuild');
        """)
