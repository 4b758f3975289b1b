"""Snippets: the part of a passage that matches a query, with the matching words marked.

FTS5 chooses the fragment and marks the terms (it knows the stemmed forms: "budgets" matches
"budget"), with the index's own tokenizer, so highlighting agrees with what keyword search matched. A
passage found only by meaning (vector search) shares no term with the query; its snippet is its opening
words.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

OPEN, CLOSE = "\x02", "\x03"  # markers FTS5 puts around matches; never present in indexed text
SNIPPET_TOKENS = 40


@dataclass(frozen=True)
class Snippet:
    text: str
    highlights: tuple[tuple[int, int], ...]  # [start, end) character spans of matched words in text

    def marked(self, open: str = "**", close: str = "**") -> str:
        out, last = [], 0
        for start, end in self.highlights:
            out += [self.text[last:start], open, self.text[start:end], close]
            last = end
        out.append(self.text[last:])
        return "".join(out)


def parse_marked(marked: str) -> Snippet:
    """The snippet of FTS5's marked text, with the markers turned into spans and outer space trimmed."""
    marked = marked.strip()  # FTS5's ellipsis ' … ' leaves a space at either end
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    pos, start = 0, -1
    for ch in marked:
        if ch == OPEN:
            start = pos
        elif ch == CLOSE and start >= 0:
            spans.append((start, pos))
            start = -1
        else:
            text.append(ch)
            pos += 1
    return Snippet("".join(text), tuple(spans))


def opening(text: str, words: int = SNIPPET_TOKENS) -> Snippet:
    parts = text.split()
    short = " ".join(parts[:words]) + (" …" if len(parts) > words else "")
    return Snippet(short, ())


def snippets(conn: sqlite3.Connection, match: str | None, chunks: dict[int, str],
             tokens: int = SNIPPET_TOKENS) -> dict[int, Snippet]:
    """A snippet for each chunk id of ``chunks`` (id → text)."""
    from plait.index.terms import TOKENIZE

    out: dict[int, Snippet] = {}
    if match and chunks:
        # FTS5 over just these few passages, in the connection's temp schema: matching the query against
        # the whole index again (even restricted to these rows) costs as much as the search itself.
        conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.plait_snippets USING fts5(text, tokenize='{TOKENIZE}')")
        conn.execute("DELETE FROM temp.plait_snippets")
        conn.executemany("INSERT INTO temp.plait_snippets (rowid, text) VALUES (?, ?)", list(chunks.items()))
        rows = conn.execute(
            f"SELECT rowid, snippet(plait_snippets, 0, '{OPEN}', '{CLOSE}', ' … ', {min(tokens, 64)}) "
            "FROM temp.plait_snippets WHERE plait_snippets MATCH ?", (match,)).fetchall()
        for rowid, marked in rows:
            out[int(rowid)] = parse_marked(marked)
    for chunk_id, text in chunks.items():
        out.setdefault(chunk_id, opening(text, tokens))
    return out
