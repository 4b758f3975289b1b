"""Re-ranking a question's results by whether they answer it.

Hybrid search ranks passages by how close they are to the query, which for a question is often a tie
between several passages on its subject: three news stories about one royal commission, and only one
names the commissioner. For a query that is a question, the top results are re-scored with the
evidence scorer ``ask`` uses (:mod:`plait.tasks.evidence`: does a sentence of the passage hold the kind
of thing asked for, next to the question's words…), so the passage that answers comes first:

    score = fused score + ANSWER_WEIGHT · (best answer probability among the passage's sentences)

Only the top ``RERANK_DEPTH`` results are re-scored (reading their sentences, with spaCy's entities and
a vector per sentence, costs ~45 ms per passage on 2 cores); the rest keep their order below them.
``ANSWER_WEIGHT`` was chosen on the dev questions (``bench/data/lee_questions_dev.json``, by
``bench/index.py``): MRR@10 at weights 0, 0.1, 0.3, 1, 2, 5: 0.9458, 0.9667, 0.9667, 0.9667, 0.9688, 0.9688
(the smaller of the tied best). Re-scoring the top 10 instead ranked the dev questions no better (0.9604
at 0.1, 0.9625 at 2) at twice the cost. The evidence scorer's own weights were fitted on the dev questions
too, so the dev figures flatter it; the reported questions are apart from every choice.
"""

from __future__ import annotations

import dataclasses
import re
from typing import TYPE_CHECKING

from plait.index.retrieval import SearchResults
from plait.tasks.evidence import Passage, candidates, score

if TYPE_CHECKING:
    from plait.index.core import Index

ANSWER_WEIGHT = 2.0
RERANK_DEPTH = 5

# A question: ends with a question mark, or starts with a question word or an inverted auxiliary
# ("did the council approve…"), as a person types one without the mark.
_QUESTION = re.compile(r"\?\s*$|^\s*(?:who|whom|whose|what|which|when|where|why|how|is|are|was|were|do|does|did|"
                       r"can|could|will|would|should|has|have|had)\b", re.IGNORECASE)


def is_question(query: str) -> bool:
    return bool(_QUESTION.search(query))


def answers_first(index: Index, results: SearchResults, k: int) -> SearchResults:
    """The results, the top ``RERANK_DEPTH`` re-scored by how well they answer the question, cut to ``k``."""
    head, tail = results.hits[:RERANK_DEPTH], results.hits[RERANK_DEPTH:]
    if len(head) < 2:
        return dataclasses.replace(results, hits=results.hits[:k])
    embedder = index.embedder()
    passages = [Passage(n, h.text, float(h.similarity or 0.0)) for n, h in enumerate(head, start=1)]
    best = dict.fromkeys(range(1, len(head) + 1), 0.0)
    for c in candidates(results.query, passages, embedder=embedder, question_vector=embedder.embed(
            results.query, "query"), conn=index.store.connection):
        best[c.source] = max(best[c.source], score(c.features))
    rescored = sorted(((h.score + ANSWER_WEIGHT * best[n], n, h) for n, h in enumerate(head, start=1)),
                      key=lambda t: (-t[0], t[1]))  # ties keep the search's order
    hits = [dataclasses.replace(h, score=s, answer=round(best[n], 4)) for s, n, h in rescored] + tail
    return dataclasses.replace(results, hits=[dataclasses.replace(h, rank=i) for i, h in enumerate(hits[:k], 1)])
