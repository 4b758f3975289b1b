"""Words as the index sees them: the tokenizer of its keyword index, the function words a query drops,
and stemming.

Keyword search, the evidence scorer and the grounding check all match words between texts the way the
keyword index does ("remaining" and "remain" are one term), so they share these.
"""

from __future__ import annotations

import re
import sqlite3
import threading

# The tokenizer of index_fts (see the m003_index_schema migration): query words are stemmed the same way
# to look up their document frequencies.
TOKENIZE = "porter unicode61 remove_diacritics 2"
WORD = re.compile(r"\w+", re.UNICODE)

# The most frequent English function words; content words are never dropped.
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves
""".split())


def query_terms(query: str) -> list[str]:
    """The words of a query that count, lower-cased, in order, without repeats."""
    terms: list[str] = []
    for word in WORD.findall(query.lower()):
        if word not in STOPWORDS and word not in terms:
            terms.append(word)
    if not terms:  # a query of only common words ("to be or not to be") still searches for them
        terms = list(dict.fromkeys(WORD.findall(query.lower())))
    return terms


_stemmer = threading.local()


def stems(texts: list[str]) -> list[list[str]]:
    """Each text's words as the keyword index stems them (SQLite's porter tokenizer), in order.

    For matching words between texts the way search matches them ("remaining" and "remain" are one
    term), with no stemming library to install.
    """
    conn: sqlite3.Connection | None = getattr(_stemmer, "conn", None)
    if conn is None:
        conn = _stemmer.conn = sqlite3.connect(":memory:", check_same_thread=False)
        conn.execute(f"CREATE VIRTUAL TABLE words USING fts5(w, tokenize='{TOKENIZE}')")
        conn.execute("CREATE VIRTUAL TABLE terms USING fts5vocab(words, 'instance')")
    with conn:
        conn.execute("DELETE FROM words")
        conn.executemany("INSERT INTO words (rowid, w) VALUES (?, ?)", list(enumerate(texts)))
        out: list[list[tuple[int, str]]] = [[] for _ in texts]
        for row, term, offset in conn.execute("SELECT doc, term, offset FROM terms"):
            out[int(row)].append((int(offset), term))
    return [[term for _, term in sorted(pairs)] for pairs in out]
