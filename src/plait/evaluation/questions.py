"""Questions from a person's own passages, written by the chat model, kept only when the passage answers them.

For a passage picked at random, plait picks a sentence and a thing in it (a number, a name: spaCy's
named entities when installed, else numbers and capitalised words) as the answer, and asks the chat model
to write a question whose answer it is (a completion after two worked examples: the 135M built-in model
follows examples far better than instructions), its first words given by the answer's kind ("Who" for a
person, "When" for a date: ``LEADS``). A question is kept only when:

- it is a question (ends with "?", at least four words) and does not give its own answer away;
- it asks for the kind of thing the answer is ("who" for a person, "how many" for a number), when
  spaCy named the answer's kind;
- most of its words (``MIN_GROUNDING`` of them, stemmed, question words aside) are in the sentence: it
  asks about what the passage says, not about something the model made up;
- the answer is in the passage, which holds by construction, and is short (at most six words).

Small models write poor questions often; these checks throw those away rather than grade ask on them.
The kept questions are a proxy for a person's own: good for comparing models and settings on the same
index (``plait eval history``), not an absolute measure of quality.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plait.errors import MissingDependency
from plait.evaluation.matching import normalise
from plait.index.terms import query_terms, stems
from plait.readers.sentences import sentences
from plait.tasks.evidence import ENTITY_LABELS, question_kind

if TYPE_CHECKING:
    from plait.models.base import TextGenerator
    from plait.runtime import Runtime

MAX_ANSWER_WORDS = 6
MIN_GROUNDING = 0.6
PROMPT = ("Sentence: The bakery sold 300 loaves of bread on Monday, its manager Anna Berg said.\nAnswer: 300\n"
          "Question: How many loaves of bread did the bakery sell on Monday?\n\n"
          "Sentence: The bakery sold 300 loaves of bread on Monday, its manager Anna Berg said.\n"
          "Answer: Anna Berg\nQuestion: Who is the manager of the bakery?\n\n"
          "Sentence: {sentence}\nAnswer: {answer}\nQuestion: {lead}")
# The question's first words, given to the model, by the answer's entity label: the small model otherwise
# often asks "What is…" of a date or "How many" of a name (thrown away, or kept as a vague question).
LEADS = {"PERSON": "Who", "CARDINAL": "How many", "QUANTITY": "How much", "MONEY": "How much",
         "PERCENT": "What percentage", "DATE": "When", "GPE": "Where", "LOC": "Where", "FAC": "Where"}
OTHER_LEAD = "Which"  # organisations, nationalities, products, events, works
_PREAMBLE = re.compile(r"^(question\s*:|q\s*:|what is the answer to (the|this) question\s*:?)\s*", re.I)
_GENERIC = frozenset("answer question name many much".split())
_ANSWER_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "NORP", "PRODUCT", "EVENT", "WORK_OF_ART",
                            "CARDINAL", "MONEY", "PERCENT", "QUANTITY", "DATE"})


@dataclass(frozen=True)
class Question:
    question: str
    answer: str
    chunk_id: int
    document_id: int
    sentence: str  # the sentence the answer comes from


@dataclass(frozen=True)
class Generated:
    kept: list[Question]
    tried: int
    refused: dict[str, int]  # why questions were thrown away, and how many


def _answer_spans(text: str) -> list[tuple[str, str | None]]:
    """Things in a sentence that can be answers, with their entity label (None: found by pattern)."""
    try:
        from plait.tasks.nlp import entity_spans

        return [(e.text, e.label) for e in entity_spans([text])[0] if e.label in _ANSWER_LABELS]
    except MissingDependency:
        pattern = re.compile(r"\b\d[\d,.]*\b|\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b")
        return [(m.group(), None) for m in pattern.finditer(text) if m.start() > 0]


def judge(question: str, answer: str, sentence: str, label: str | None = None) -> str | None:
    """Why a written question is not kept, or None when it is. ``label`` is the answer's entity label."""
    q = question.strip()
    if not q.endswith("?") or len(q.split()) < 4:
        return "not a question"
    if normalise(answer) in normalise(q):
        return "gives its answer away"
    kind = question_kind(q)
    if label is not None and kind in ENTITY_LABELS and label not in ENTITY_LABELS[kind]:
        return "asks for another kind of answer"
    asked, said = stems([" ".join(w for w in query_terms(q) if w not in _GENERIC), sentence])
    if not asked or sum(w in set(said) for w in asked) / len(asked) < MIN_GROUNDING:
        return "not about the passage"
    return None


def generate(runtime: Runtime, model: TextGenerator, count: int, *, seed: int = 0,
             collection: str | None = None, tries_per_question: int = 3) -> Generated:
    """Up to ``count`` kept questions, trying at most ``tries_per_question`` passages for each."""
    from plait.models.base import GenerationOptions

    where, params = ("WHERE k.name = ?", (collection,)) if collection else ("", ())
    rows = runtime.store.query(
        "SELECT c.id, c.document_id, c.text FROM index_chunks c JOIN index_documents d ON d.id = c.document_id "
        f"JOIN index_files f ON f.id = d.file_id JOIN index_collections k ON k.id = f.collection_id {where} "
        "ORDER BY c.id", params)
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    kept: list[Question] = []
    refused: dict[str, int] = {}
    tried = 0
    used_documents: set[int] = set()
    options = GenerationOptions(max_tokens=48, temperature=0.0, stop=("\n",))
    for i in order:
        if len(kept) >= count or tried >= count * tries_per_question:
            break
        chunk_id, document_id, text = int(rows[i][0]), int(rows[i][1]), rows[i][2]
        if document_id in used_documents:
            continue
        candidates = [s for s in sentences(text) if 8 <= len(s.split()) <= 50]
        if not candidates:
            continue
        sentence = rng.choice(candidates)
        spans = [a for a in _answer_spans(sentence) if len(a[0].split()) <= MAX_ANSWER_WORDS]
        if not spans:
            continue
        answer, label = rng.choice(spans)
        tried += 1
        lead = LEADS.get(label, OTHER_LEAD) if label is not None else ""
        reply = model.complete(PROMPT.format(answer=answer, sentence=sentence, lead=lead), options).text
        written = reply.strip().splitlines()[0].strip().strip('"') if reply.strip() else ""
        question = f"{lead} {written}".strip() if lead else _PREAMBLE.sub("", written)
        reason = judge(question, answer, sentence, label)
        if reason:
            refused[reason] = refused.get(reason, 0) + 1
            continue
        used_documents.add(document_id)
        kept.append(Question(question, answer, chunk_id, document_id, sentence))
    return Generated(kept, tried, refused)
