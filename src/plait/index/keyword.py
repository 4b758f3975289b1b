"""Keyword search: SQLite FTS5 with BM25 ranking over chunk text and context (title and headings).

A person's query is not FTS5 syntax (a stray quote or ``AND`` would be an error or an operator), so it
is turned into one: each word becomes a quoted term, and the terms are OR-ed so a chunk matching most of
them ranks first rather than one matching all of them being required. A word said twice counts twice, as
in BM25 over the query's own term frequencies. "Phrases in quotes" add a phrase term, so a passage with
the exact phrase ranks higher, but their words still count one by one: a pasted sentence with a quotation
in it is not a phrase search (with the quoted words searched only as a phrase, a sentence held out of an
article found it at MRR@10 0.494 against 0.526 once its quoted words counted; bench/index.py).

Scoring is what costs: FTS5 computes BM25 for every chunk that matches any term, so a ten-word query
on 100,000 chunks can score most of them (~100 ms here). Function words are dropped outright, and the
remaining terms are taken rarest first (document frequencies from the index's vocabulary) until their
postings reach a budget: the terms left out are the most frequent, whose IDF, and so whose share of
BM25, is the smallest. The three rarest terms are always kept. On a small index nothing is left out; on 100,000 chunks
the top 10 keep ~91% of the top 10 of BM25 over every term, several times faster (bench/index.py).

Words are stemmed (Porter) so "remaining" finds "remain", but the stemmer also merges words a person
means apart: "gunning" becomes "gun", "liquidation" "liquid", "colonial" "coloni" (as in colony). Each chunk
is also in a second index of its words as written (``index_fts_exact``). For a query of a few words (at
most ``SHORT_QUERY_WORDS`` that count), a chunk's score is its stemmed BM25 plus ``EXACT_WEIGHT`` times its
BM25 there, so the word as typed outweighs another of its stem; a longer query (a sentence, a question) is
scored on the stemmed index alone, where stemming's extra matches help more than word forms do.
Chosen on the dev sets by bench/index.py (the newsgroup posts: 174 first sentences; held-out sentences and
their four rarest words, with four seeds each, ~700 queries apiece; bench/data/lee_questions_dev.json), mean hybrid
MRR@10 over the four at the fusion weight 0.8 by the most words a query may have to use both indexes:
0 (stemmed only) 0.5945, 2 0.5963, 3 0.5949, 4 0.5973, 5 0.5966, 6 0.5960, 8 0.5951, any 0.5930. On the
four rare words alone: 0.4204 -> 0.4261; the same weight for every query had cost held-out sentences
0.5193 -> 0.5127 and the questions 0.9521 -> 0.9437. Dropping stemming altogether: 0.5865. A short query
costs a second FTS5 query (fast: a few rare terms); a long one costs what it did with one index. The
exact-words index is as large as the stemmed one (~47 MB per 100,000 chunks).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from plait.index.filters import JOINS, SearchFilters
from plait.index.terms import TOKENIZE, WORD, query_terms

# Weights of the FTS columns (context, text) in BM25: a match in a title or heading counts double.
CONTEXT_WEIGHT, TEXT_WEIGHT = 2.0, 1.0
MAX_TERMS = 32
POSTINGS_BUDGET = 5_000
MIN_TERMS = 3
# The index of words as written (migration m009_index_exact_words), the weight of its BM25 added to the
# stemmed index's, and the longest query (in words that count) scored on both; chosen on the dev sets (see
# the module docstring): weights 0.5, 1 and 2 at most 4 words gave 0.5972, 0.5966, 0.5973.
EXACT_TABLE = "index_fts_exact"
EXACT_WEIGHT = 2.0
SHORT_QUERY_WORDS = 4
FTS_TABLES = ("index_fts", EXACT_TABLE)  # both are rebuilt from index_chunks when damaged

_PHRASE = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class KeywordHit:
    chunk_id: int
    bm25: float  # higher is better (FTS5 reports it negated)


def fts_query(query: str, conn: sqlite3.Connection | None = None, budget: int | None = POSTINGS_BUDGET) -> str | None:
    """The FTS5 MATCH expression for a person's query; None when it has no words at all.

    Given the connection, terms beyond the postings ``budget`` are left out (see the module docstring).
    """
    phrases: list[str] = []
    for phrase in _PHRASE.findall(query):
        words = WORD.findall(phrase)
        if len(words) > 1:
            phrases.append('"' + " ".join(words) + '"')
    terms = query_terms(query)[:MAX_TERMS]
    if conn is not None and budget is not None and len(terms) > MIN_TERMS:
        terms = _within_budget(conn, terms, budget)
    kept = set(terms)
    counted = [w for w in WORD.findall(query.lower()) if w in kept]
    # Repeats come after every distinct term, so the MAX_TERMS cut drops a repeat before a new word.
    repeats = [w for i, w in enumerate(counted) if w in counted[:i]]
    parts = list(dict.fromkeys(phrases))[:MAX_TERMS // 4] + [f'"{t}"' for t in terms + repeats]
    return " OR ".join(parts[:MAX_TERMS]) if parts else None


def document_frequencies(conn: sqlite3.Connection, words: list[str]) -> list[int]:
    """How many chunks contain each word (after the index's own stemming)."""
    # SQLite's tokenizer stems the words: each word is a row of a scratch FTS5 table in the connection's
    # temp schema, and that table's vocabulary maps row (word) to stem.
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.plait_query USING fts5(w, tokenize='{TOKENIZE}')")
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.plait_query_terms USING fts5vocab(temp, plait_query, "
                 "'instance')")
    conn.execute("DELETE FROM temp.plait_query")
    conn.executemany("INSERT INTO temp.plait_query (rowid, w) VALUES (?, ?)", list(enumerate(words)))
    stems: dict[int, list[str]] = {}
    for row, term in conn.execute("SELECT doc, term FROM temp.plait_query_terms"):
        stems.setdefault(int(row), []).append(term)
    df = term_frequencies(conn, [t for i in range(len(words)) for t in stems.get(i, [])])
    return [min((df[t] for t in stems.get(i, [])), default=0) for i in range(len(words))]


def term_frequencies(conn: sqlite3.Connection, terms: list[str]) -> dict[str, int]:
    """How many chunks hold each stemmed term (as :func:`plait.index.terms.stems` gives them)."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.plait_index_terms USING fts5vocab(main, index_fts, 'row')")
    df = _cache_for(conn)
    for term in terms:
        if term not in df:
            # fts5vocab counts a term's documents by reading its whole posting list: worth caching.
            found = conn.execute("SELECT doc FROM temp.plait_index_terms WHERE term = ?", (term,)).fetchone()
            df[term] = int(found[0]) if found else 0
    return {t: df[t] for t in terms}


_DF_CACHE_SIZE = 50_000
_DF_STALE_CHANGES = 1_000  # chunks added or removed before cached frequencies are read again
_df_caches: dict[str, tuple[int, dict[str, int]]] = {}


def _cache_for(conn: sqlite3.Connection) -> dict[str, int]:
    """Document frequencies seen so far for this database. They only choose which frequent terms a query
    leaves out, so slightly old values do no harm; they are dropped after enough changes."""
    path = str(conn.execute("PRAGMA database_list").fetchone()[2])
    changes = int(conn.execute("SELECT changes FROM index_state WHERE id = 1").fetchone()[0])
    since, cache = _df_caches.get(path, (changes, {}))
    if abs(changes - since) > _DF_STALE_CHANGES or len(cache) > _DF_CACHE_SIZE:
        since, cache = changes, {}
    _df_caches[path] = (since, cache)
    return cache


def _within_budget(conn: sqlite3.Connection, terms: list[str], budget: int) -> list[str]:
    frequencies = document_frequencies(conn, terms)
    keep: set[str] = set()
    total = 0
    for df, term in sorted(zip(frequencies, terms, strict=True)):
        if len(keep) >= MIN_TERMS and total + df > budget:
            break
        keep.add(term)
        total += df
    return [t for t in terms if t in keep]


def keyword_search(conn: sqlite3.Connection, query: str, k: int,
                   filters: SearchFilters | None = None) -> list[KeywordHit]:
    """The ``k`` best chunks by BM25, best first: in the stemmed index, plus ``EXACT_WEIGHT`` times BM25 in
    the index of words as written for a query of at most ``SHORT_QUERY_WORDS`` words."""
    match = fts_query(query, conn)
    if match is None:
        return []
    try:
        if len(query_terms(query)) > SHORT_QUERY_WORDS:
            stemmed = _bm25(conn, "index_fts", match, k, filters)
            return [KeywordHit(c, score) for c, score in stemmed.items()]
        # Each index's 2k best; a chunk missing from one list counts 0 there. Reading every missing score
        # instead (a MATCH per list, filtered to those chunks) gave the same MRR@10 to four decimals on the
        # dev corpus and the Lee articles, and cost over twice the time: those queries scan every match.
        stemmed = _bm25(conn, "index_fts", match, 2 * k, filters)
        exact = _bm25(conn, EXACT_TABLE, match, 2 * k, filters)
    except sqlite3.OperationalError as exc:  # a query FTS5 still cannot parse: search nothing, say why
        from plait.errors import InputError

        raise InputError(f"cannot search for {query!r} ({exc}); remove unusual punctuation") from exc
    scores = {c: stemmed.get(c, 0.0) + EXACT_WEIGHT * exact.get(c, 0.0) for c in stemmed.keys() | exact.keys()}
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
    return [KeywordHit(c, score) for c, score in ranked]


def _bm25(conn: sqlite3.Connection, table: str, match: str, k: int,
          filters: SearchFilters | None) -> dict[int, float]:
    """BM25 (higher is better) of the ``k`` best chunks of one FTS table."""
    score = f"bm25({table}, {CONTEXT_WEIGHT}, {TEXT_WEIGHT})"
    if filters is None or filters.empty:
        sql = f"SELECT rowid, {score} AS score FROM {table} WHERE {table} MATCH ? ORDER BY score LIMIT ?"
        params: list[object] = [match, k]
    else:
        where, params = filters.sql()
        sql = (f"SELECT c.id, {score} AS score FROM {table} JOIN index_chunks c ON c.id = {table}.rowid "
               f"{JOINS} WHERE {table} MATCH ? AND {where} ORDER BY score LIMIT ?")
        params = [match, *params, k]
    return {int(r[0]): -float(r[1]) for r in conn.execute(sql, params)}


def fts_problem(conn: sqlite3.Connection, table: str) -> str | None:
    """FTS5's own integrity check of ``table`` against the chunk rows it is built from: what is wrong, or
    None."""
    try:
        conn.execute(f"INSERT INTO {table}({table}, rank) VALUES ('integrity-check', 1)")
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None


def rebuild_fts(conn: sqlite3.Connection, table: str) -> None:
    """Build ``table`` again from the chunk rows (inside the caller's transaction)."""
    conn.execute(f"INSERT INTO {table}({table}) VALUES ('rebuild')")
