"""Conversations kept for the person: the chats of the web page, in SQLite, listed and reopened later.

A conversation has a title (its first question, shortened, until renamed), a model and a system prompt;
its messages are the person's turns and the model's answers. An answer stopped before its end is kept
as far as it got, marked ``stopped``.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from plait.errors import InputError
from plait.models.base import Message
from plait.store import Store

TITLE_CHARS = 60


@dataclass(frozen=True)
class ConversationMessage:
    id: int
    role: str
    content: str
    model: str | None
    stopped: bool
    created_at: float


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    model: str | None
    system: str | None
    created_at: float
    updated_at: float
    messages: tuple[ConversationMessage, ...] = ()

    def history(self) -> list[Message]:
        """What the model reads: the system prompt, then every turn."""
        head = [Message("system", self.system)] if self.system else []
        return head + [Message("user" if m.role == "user" else "assistant", m.content) for m in self.messages]


class Conversations:
    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, *, title: str = "", model: str | None = None, system: str | None = None) -> Conversation:
        now = time.time()
        with self.store.transaction() as conn:
            cur = conn.execute("INSERT INTO conversations (title, model, system, created_at, updated_at) "
                               "VALUES (?, ?, ?, ?, ?)", (title.strip()[:200], model, system or None, now, now))
        return self.get(int(cur.lastrowid or 0))

    def list(self, limit: int = 200) -> list[Conversation]:
        rows = self.store.query("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC LIMIT ?", (limit,))
        return [Conversation(r["id"], r["title"], r["model"], r["system"], r["created_at"], r["updated_at"])
                for r in rows]

    def get(self, conversation_id: int) -> Conversation:
        rows = self.store.query("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise InputError(f"no conversation {conversation_id}")
        r = rows[0]
        messages = tuple(ConversationMessage(m["id"], m["role"], m["content"], m["model"], bool(m["stopped"]),
                                             m["created_at"])
                         for m in self.store.query("SELECT * FROM conversation_messages WHERE conversation_id = ? "
                                                   "ORDER BY id", (conversation_id,)))
        return Conversation(r["id"], r["title"], r["model"], r["system"], r["created_at"], r["updated_at"], messages)

    def add_exchange(self, conversation_id: int, question: str, answer: str, *, model: str | None = None,
                     stopped: bool = False) -> None:
        """Append the person's turn and the model's answer to it, both or neither (one transaction); the
        first question names a conversation that has no title yet."""
        with self.store.transaction() as conn:
            _append(conn, conversation_id, "user", question)
            _append(conn, conversation_id, "assistant", answer, model=model, stopped=stopped)

    def update(self, conversation_id: int, *, title: str | None = None, model: str | None = None,
               system: str | None = None) -> Conversation:
        self.get(conversation_id)
        with self.store.transaction() as conn:
            for column, value in (("title", title), ("model", model), ("system", system)):
                if value is not None:
                    conn.execute(f"UPDATE conversations SET {column} = ? WHERE id = ?",  # noqa: S608 - fixed names
                                 (value.strip() or None if column != "title" else value.strip()[:200],
                                  conversation_id))
        return self.get(conversation_id)

    def delete(self, conversation_id: int) -> None:
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM conversation_messages WHERE conversation_id = ?", (conversation_id,))
            if conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount == 0:
                raise InputError(f"no conversation {conversation_id}")


def _append(conn: sqlite3.Connection, conversation_id: int, role: str, content: str, *, model: str | None = None,
            stopped: bool = False) -> None:
    now = time.time()
    found = conn.execute("SELECT title FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if found is None:
        raise InputError(f"no conversation {conversation_id}")
    conn.execute("INSERT INTO conversation_messages (conversation_id, role, content, model, stopped, "
                 "created_at) VALUES (?, ?, ?, ?, ?, ?)", (conversation_id, role, content, model, int(stopped), now))
    title = found[0] or (_title(content) if role == "user" else "")
    conn.execute("UPDATE conversations SET updated_at = ?, title = ? WHERE id = ?", (now, title, conversation_id))


def _title(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= TITLE_CHARS else words[:TITLE_CHARS].rsplit(" ", 1)[0] + "…"
