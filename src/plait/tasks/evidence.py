"""Evidence for an answer: the sentences of the retrieved passages that answer the question.

``ask`` picks its evidence before any model writes a word, and the answer is built from it. Every
sentence of the passages is scored with what plait has, no extra model:

- ``similarity``: cosine similarity of the question and the sentence (the index's embedding model;
  all-MiniLM was trained on question-answer pairs among others, so an answer sits close to its question);
- ``overlap``: the share of the question's words, weighted by their rarity in the index (IDF), that the
  sentence holds, matched the way keyword search matches them (stemmed);
- ``passage overlap`` and ``passage similarity``: the same share over the whole passage, and the
  passage's cosine similarity to the question, since an answer sentence often leaves out the subject
  its passage has already named ("He says 500 residents have left");
- ``kind``: whether the sentence holds the kind of thing the question asks for, that the question does
  not already hold: a number for "how many", a person for "who", a place for "where", a date for "when"
  (+1), or not (-1); 0 when the question asks for no particular kind. Things are spaCy's named entities
  when spaCy is installed (the ``nlp`` extra); without it, numbers, capitalised words and dates found by
  patterns, which tell a person from a country less well;
- ``novelty``: how many words of its own the sentence brings (a sentence that only repeats the question
  answers nothing);
- ``before`` and ``after``: the overlap of the sentences just before and after it in its passage: an
  answer often follows the sentence that names what the question asks about ("The former managing
  director of One.Tel has denied claims…" then "Jodee Rich says…").
- ``nearness``: how close, in words, the asked-for thing stands to a word of the question in the
  sentence ("An estimated **500 residents** have left" for "How many residents left…"), since a sentence
  can hold a number and the question's words far apart, about something else;
- ``focus``: the same for the question's focus word, the noun it asks about ("how many *residents*",
  "which *town*"): an answer usually names the thing next to it.

A logistic model over these gives each sentence a probability of answering the question. Its weights
were fitted on the questions of ``bench/data/lee_questions_dev.json`` (``python bench/ask.py --fit``),
which are about other articles than the questions the figures are reported on.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from plait.errors import MissingDependency
from plait.index.keyword import term_frequencies
from plait.index.terms import STOPWORDS, query_terms, stems

if TYPE_CHECKING:
    import numpy as np

    from plait.models.base import Embedder

QuestionKind = Literal["number", "duration", "person", "place", "time", "name", "other"]

# Fitted by `python bench/ask.py --fit` on the dev questions (see the module docstring): the weights of
# similarity, overlap, passage overlap, passage similarity, kind, novelty, before, after, nearness and
# focus, then the intercept.
WEIGHTS = (1.356, 2.997, 4.418, 0.781, 1.022, 0.033, 1.64, 0.007, 0.557, 0.776)
INTERCEPT = -9.009
NEAR_SCALE, FOCUS_SCALE = 3.0, 2.0  # words between an answer and the question's words that halve nearness
MIN_WORDS = 4  # shorter pieces (a dateline, "he said.") are not evidence
NOVELTY_CAP = 8  # new words beyond this many add nothing more

_DURATION_QUESTION = re.compile(r"\b(how (long|old)|for how many (years|months|weeks|days|hours))\b", re.I)
_NUMBER_QUESTION = re.compile(
    r"\b(how (many|much|far|big|tall|large|high|often|fast|deep|heavy)|by how|"
    r"what (percentage|proportion|share|number|amount|score|age|size|level|rate|price|cost|budget|total)|"
    r"by what|to what (level|extent|figure))\b", re.I)
_TIME_QUESTION = re.compile(r"\b(when|what (time|date|day|year|month)|which (day|year|month))\b", re.I)
_PERSON_QUESTION = re.compile(r"\b(who|whom|whose)\b", re.I)
_PLACE_QUESTION = re.compile(r"\bwhere\b", re.I)
_WHICH = re.compile(r"\b(?:which|what)((?:\s+[\w'’-]+){1,3})", re.I)
# The words after "how many", "which", "what": the first that is not a function word is the question's
# focus ("how many residents", "what kind of gun").
_FOCUS = re.compile(r"\b(?:how (?:many|much)|which|what)((?:\s+[\w'’-]+){1,4})", re.I)
_NOT_FOCUS = frozenset("kind type sort sorts name number amount did does do was were is are has have will would "
                       "could can".split())
_TOKEN = re.compile(r"[^\W_]+")  # the words the keyword index's tokenizer sees, in order
# Nouns after "which" that ask for a person or a place ("which senate leader", "in which country").
PERSON_NOUNS = frozenset("""
leader minister coach magistrate judge skipper spinner bowler batsman player actor actress scientist president
premier captain chief commander director governor official spokesman spokeswoman man woman boy girl
person candidate senator mayor treasurer secretary chairman singer writer author commissioner controller
""".split())
PLACE_NOUNS = frozenset("town city country state river island suburb suburbs region village area nation".split())
# spaCy entity labels that answer each kind of question.
ENTITY_LABELS: dict[str, frozenset[str]] = {
    "number": frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT"}),
    "duration": frozenset({"CARDINAL", "QUANTITY", "DATE", "TIME"}),
    "time": frozenset({"DATE", "TIME"}),
    "person": frozenset({"PERSON"}),
    "place": frozenset({"GPE", "LOC", "FAC"}),
    "name": frozenset({"PERSON", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "NORP",
                       "LANGUAGE"}),
}

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
}
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_WORD = re.compile(r"[A-Za-z][\w'’.-]*|\d[\d,.:/-]*")
_CAPITALISED = re.compile(r"\b(?:[A-Z][a-z][\w'’-]*|[A-Z]{2,}[\w-]*)")
_MONTHS = ("january february march april may june july august september october november december "
           "monday tuesday wednesday thursday friday saturday sunday").split()
_TIME = re.compile(r"\b(?:\d{1,2}:\d{2}|\d{1,2}(?:am|pm)|(?:19|20)\d\d|yesterday|today|tomorrow|tonight|"
                   r"(?:last|next|this) (?:week|month|year|night)|" + "|".join(_MONTHS) + r")\b", re.I)


@dataclass(frozen=True)
class Evidence:
    """A sentence of a source passage, scored as an answer to the question."""

    source: int  # the source (passage) number, from 1
    sentence: int  # the sentence's number in its passage, from 1
    text: str
    score: float  # estimated probability that the sentence answers the question
    similarity: float
    overlap: float
    kind_match: int  # +1 holds what the question asks for, -1 does not, 0 the question asks for no kind


@dataclass(frozen=True)
class Passage:
    """What evidence is drawn from: a numbered source's text and its similarity to the question."""

    number: int
    text: str
    similarity: float


def question_kind(question: str) -> QuestionKind:
    """What kind of thing the question asks for, from its wording."""
    if _DURATION_QUESTION.search(question):
        return "duration"
    if _NUMBER_QUESTION.search(question):
        return "number"
    if _TIME_QUESTION.search(question):
        return "time"
    if _PERSON_QUESTION.search(question):
        return "person"
    if _PLACE_QUESTION.search(question):
        return "place"
    which = _WHICH.search(question)
    if which:
        nouns = {without_possessive(w.lower()) for w in which.group(1).split()}
        nouns |= {w.removesuffix("s") for w in nouns}  # "which players" asks for a player
        if nouns & PERSON_NOUNS:
            return "person"
        if nouns & PLACE_NOUNS:
            return "place"
        if which.group(0).lower().startswith("which"):
            return "name"
    return "other"


def numbers(text: str) -> set[str]:
    """The numbers a text states, written the same way whatever their form ("1,000", "eight" → "8")."""
    found = {m.group().rstrip(".,").replace(",", "") for m in _NUMBER.finditer(text)}
    found |= {NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in NUMBER_WORDS}
    return {n for n in found if n}


def without_possessive(word: str) -> str:
    """A word without its possessive ending: "Thomas's" → "Thomas", "players'" → "players"."""
    for suffix in ("'s", "’s", "'", "’"):
        if word.endswith(suffix) and len(word) > len(suffix):
            return word[:-len(suffix)]
    return word


def names(text: str) -> set[str]:
    """Capitalised words that are not function words (names of people, places, things), lower-cased."""
    return {w.lower().strip("'’.-") for w in _CAPITALISED.findall(text)} - STOPWORDS


def times(text: str) -> set[str]:
    return {m.group().lower() for m in _TIME.finditer(text)}


def holds_kind(kind: QuestionKind, sentence: str, question: str) -> int:
    """+1 when the sentence holds a thing of the asked-for kind that the question does not, -1 when it does
    not, 0 for questions that ask for no particular kind (by patterns: see :func:`answer_spans`)."""
    if kind == "other":
        return 0
    return 1 if _pattern_spans(kind, sentence, question) else -1


def _pattern_spans(kind: QuestionKind, sentence: str, question: str) -> list[tuple[int, int]]:
    """Where the sentence holds a thing of the asked-for kind that the question does not, by patterns."""
    if kind in ("number", "duration"):
        asked = numbers(question)
        found = [m for m in _NUMBER.finditer(sentence) if m.group().rstrip(".,").replace(",", "") not in asked]
        found += [m for m in re.finditer(r"[a-z]+", sentence.lower()) if m.group() in NUMBER_WORDS
                  and NUMBER_WORDS[m.group()] not in asked]
    elif kind == "time":
        asked = times(question)
        found = [m for m in _TIME.finditer(sentence) if m.group().lower() not in asked]
    else:
        asked = names(question) | {w.lower() for w in _WORD.findall(question)}
        found = [m for m in _CAPITALISED.finditer(sentence)
                 if m.group().lower().strip("'’.-") not in asked and m.group().lower() not in STOPWORDS]
    return sorted((m.start(), m.end()) for m in found)


def answer_spans(kind: QuestionKind, sentences: Sequence[str], question: str) -> list[list[tuple[int, int]]]:
    """For each sentence, where it holds a thing of the asked-for kind that the question does not hold
    (character spans): spaCy's named entities when spaCy is installed, else patterns. Empty lists for
    questions that ask for no particular kind."""
    if kind == "other":
        return [[] for _ in sentences]
    try:
        from plait.tasks.nlp import entity_spans
        docs = entity_spans(sentences)
    except MissingDependency:
        return [_pattern_spans(kind, s, question) for s in sentences]
    asked = set(re.findall(r"\w+", question.lower()))
    labels = ENTITY_LABELS[kind]
    return [[(e.start, e.end) for e in entities if e.label in labels
             and not all(w in asked for w in re.findall(r"\w+", e.text.lower()))] for entities in docs]


def signs(kind: QuestionKind, spans: Sequence[Sequence[tuple[int, int]]]) -> list[int]:
    """For each sentence's spans (see :func:`answer_spans`): +1 when it holds the asked-for kind of thing,
    -1 when not, 0 when the question asks for no particular kind."""
    return [0 if kind == "other" else 1 if found else -1 for found in spans]


def focus_word(question: str) -> str | None:
    """The noun a "how many / which / what" question asks about, stemmed ("how many residents" → "resid")."""
    match = _FOCUS.search(question)
    if not match:
        return None
    for word in match.group(1).split():
        word = without_possessive(word.lower())
        if word not in STOPWORDS and word not in _NOT_FOCUS:
            found = stems([word])[0]
            return found[0] if found else None
    return None


def nearness(sentence: str, own: Sequence[str], spans: Sequence[tuple[int, int]], targets: set[str],
             scale: float) -> float:
    """1 when an asked-for thing (``spans``) stands next to one of the ``targets`` (stemmed words), falling
    as words come between them (``scale`` words between halve it); 0 when the sentence has neither.

    ``own`` is the sentence's words as the keyword index stems them, in order; word positions come from
    the same tokenization, so a sentence the two read differently counts as having no match.
    """
    tokens = [m.start() for m in _TOKEN.finditer(sentence)]
    if not spans or len(tokens) != len(own):
        return 0.0
    at = [i for i, term in enumerate(own) if term in targets]
    if not at:
        return 0.0
    best = len(tokens)
    for start, end in spans:
        first = sum(1 for t in tokens if t < start)
        last = max(first, sum(1 for t in tokens if t < end) - 1)
        best = min(best, *(0 if first <= i <= last else min(abs(i - first), abs(i - last)) - 1 for i in at))
    return 1.0 / (1.0 + max(best, 0) / scale)


def sentences_of(text: str) -> list[str]:
    from plait.readers.sentences import sentences

    return sentences(text)


def idf(conn: sqlite3.Connection, terms: Sequence[str]) -> dict[str, float]:
    """BM25's inverse document frequency of stemmed terms, from the index's own counts."""
    total = int(conn.execute("SELECT count(*) FROM index_chunks").fetchone()[0]) or 1
    df = term_frequencies(conn, list(terms))
    return {t: math.log(1.0 + (total - n + 0.5) / (n + 0.5)) for t, n in df.items()}


def score(features: Sequence[float]) -> float:
    z = INTERCEPT + sum(w * x for w, x in zip(WEIGHTS, features, strict=True))
    return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class Candidate:
    """A sentence with its features, before scoring (``bench/ask.py --fit`` learns from these)."""

    source: int
    sentence: int
    text: str
    features: tuple[float, ...]  # in the order of WEIGHTS


def candidates(question: str, passages: Sequence[Passage], *, embedder: Embedder, question_vector: np.ndarray,
               conn: sqlite3.Connection) -> list[Candidate]:
    """Every sentence of the passages with its features."""
    pieces: list[tuple[int, int, str]] = []
    for p in passages:
        for n, sentence in enumerate(sentences_of(p.text), start=1):
            if len(sentence.split()) >= MIN_WORDS:
                pieces.append((p.number, n, sentence))
    if not pieces:
        return []
    asked = list(dict.fromkeys(stems([" ".join(query_terms(question))])[0]))
    all_stems = stems([s for _, _, s in pieces] + [p.text for p in passages])
    sentence_stems, passage_stems = all_stems[:len(pieces)], all_stems[len(pieces):]
    by_passage = {p.number: set(st) for p, st in zip(passages, passage_stems, strict=True)}
    weights = idf(conn, asked)
    total = sum(weights.values()) or 1.0
    vectors = embedder.embed_many([s for _, _, s in pieces], kind="document")
    similarities = vectors @ question_vector
    kind = question_kind(question)
    spans = answer_spans(kind, [s for _, _, s in pieces], question)
    kinds = signs(kind, spans)
    focus = focus_word(question)
    asked_set = set(asked)
    stop_stems = set(stems([" ".join(sorted(STOPWORDS))])[0])
    relevance = {p.number: p.similarity for p in passages}
    overlaps = [sum(weights[t] for t in asked if t in set(own)) / total for own in sentence_stems]
    out = []
    for i, ((source, number, text), own, similarity, held, spans_of) in enumerate(
            zip(pieces, sentence_stems, similarities, kinds, spans, strict=True)):
        words = set(own)
        around = sum(weights[t] for t in asked if t in by_passage[source]) / total
        novelty = min(len(words - asked_set - stop_stems), NOVELTY_CAP) / NOVELTY_CAP
        before = overlaps[i - 1] if i > 0 and pieces[i - 1][0] == source else 0.0
        after = overlaps[i + 1] if i + 1 < len(pieces) and pieces[i + 1][0] == source else 0.0
        near = nearness(text, own, spans_of, asked_set, NEAR_SCALE)
        on_focus = nearness(text, own, spans_of, {focus}, FOCUS_SCALE) if focus else 0.0
        features = (float(similarity), overlaps[i], around, relevance[source], float(held), novelty, before, after,
                    near, on_focus)
        out.append(Candidate(source, number, text, features))
    return out


def find_evidence(question: str, passages: Sequence[Passage], *, embedder: Embedder, question_vector: np.ndarray,
                  conn: sqlite3.Connection) -> list[Evidence]:
    """The sentences of the passages, best answer first."""
    out = []
    for c in candidates(question, passages, embedder=embedder, question_vector=question_vector, conn=conn):
        out.append(Evidence(c.source, c.sentence, c.text, round(score(c.features), 4), round(c.features[0], 4),
                            round(c.features[1], 4), int(c.features[4])))
    return sorted(out, key=lambda e: -e.score)
