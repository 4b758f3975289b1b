"""SQLite tables: one row per item, in a database file of the user's (default
``$PLAIT_HOME/workflows/tables.db``), for spreadsheets, dashboards or later queries.

Rows are keyed by workflow, item and step (``_key``, the primary key: ``inbox-triage/maildir:…/log``) and
written with ``INSERT OR REPLACE``, so an item is one row however often it is applied. The table is
created on first use with the configured columns (plus ``_key`` and ``_at``); columns added to the
workflow later are added to the table.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from plait.security.keys import sqlite_key_for as table_key
from plait.store.database import connect
from plait.workflows.context import StepContext
from plait.workflows.errors import StepError
from plait.workflows.sinks import Sink, SinkOptions
from plait.workflows.steps import to_jsonable

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class TableOptions(SinkOptions):
    table: str = Field(description="table name (letters, digits, _)")
    columns: dict[str, Any] = Field(min_length=1, description="column name → template or value")
    database: str | None = Field(None, description="SQLite file (default: $PLAIT_HOME/workflows/tables.db)")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        if not _NAME.match(value) or value.lower().startswith("sqlite_"):
            raise ValueError(f"'{value}' is not a usable table name (letters, digits and _, not sqlite_…)")
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, Any]) -> dict[str, Any]:
        bad = [c for c in value if not _NAME.match(c) or c.startswith("_")]
        if bad:
            raise ValueError(f"column name(s) {', '.join(bad)} are not usable (letters, digits, _; not starting "
                             "with _)")
        return value


class TableSink(Sink):
    Options = TableOptions
    options: TableOptions

    def __init__(self, options: Any, env: Any) -> None:
        super().__init__(options, env)
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()

    def _path(self, ctx: StepContext) -> Path:
        if self.options.database:
            return ctx.input_path(self.options.database)
        return ctx.runtime.settings.home / "workflows" / "tables.db"

    def _row(self, ctx: StepContext) -> dict[str, Any]:
        row = {}
        for name, template in self.options.columns.items():
            value = to_jsonable(ctx.render(template))
            if isinstance(value, dict | list):
                import json

                value = json.dumps(value, ensure_ascii=False)
            row[name] = value
        return row

    def _connection(self, path: Path) -> sqlite3.Connection:
        # One connection per thread and file, kept for the run: opening and closing SQLite per row is slow.
        local = self.__dict__.setdefault("_local", threading.local())
        conns: dict[Path, sqlite3.Connection] = local.__dict__.setdefault("conns", {})
        conn = conns.get(path)
        if conn is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                # Inside an encrypted home (the default tables.db is) the table is encrypted like plait's own
                # database, with its key; a database the author named elsewhere is plain SQLite.
                conn = connect(path, table_key(path), timeout=30)
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise StepError(f"cannot open the table database {path} ({exc})") from exc
            conns[path] = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self.__dict__.pop("_local", None)

    def apply(self, ctx: StepContext) -> dict[str, Any]:
        path = self._path(ctx)
        row = self._row(ctx)
        table = self.options.table
        conn = self._connection(path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (_key TEXT PRIMARY KEY, _at REAL)')
            have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            for column in row:
                if column not in have:
                    conn.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}"')
            names = ["_key", "_at", *row]
            marks = ", ".join("?" * len(names))
            conn.execute(f'INSERT OR REPLACE INTO "{table}" ({", ".join(f"{chr(34)}{n}{chr(34)}" for n in names)}) '
                         f"VALUES ({marks})", (self._key(ctx), time.time(), *row.values()))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StepError(f"cannot write to table {table} in {path} ({exc})") from exc
        return {"database": str(path), "table": table, "key": self._key(ctx)}

    def _key(self, ctx: StepContext) -> str:
        return f"{self.env.workflow}/{ctx.item_key}/{ctx.step_path}"

    def describe(self, ctx: StepContext) -> dict[str, Any]:
        return {"would_write_row": self._row(ctx), "table": self.options.table, "database": str(self._path(ctx))}
