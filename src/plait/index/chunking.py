"""Chunks: the passages the index stores, searches and cites.

Chunks follow a document's structure: they never straddle two headings unless a section is too small
to stand alone (a mail's header block joins the start of its body; a one-line heading section joins
the next), paragraphs are kept whole when they fit, and a long paragraph is cut between sentences.
Consecutive chunks of one section overlap by a sentence or two so a fact split across the cut is still
found whole in one of them.

Sizes are in words: all-MiniLM reads at most 256 word pieces, and ~180 English words is ~240 pieces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plait.readers.document import Document, Section
from plait.readers.sentences import sentences

MAX_WORDS = 180
OVERLAP_WORDS = 30
MIN_WORDS = 40  # a section smaller than this is merged with the next one

_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    text: str
    position: int  # order within the document
    section: int  # index of the section the chunk starts in
    heading: str | None  # heading path, "Budget > 2024"

    def embed_text(self, title: str | None = None) -> str:
        """What is embedded: the heading path gives a passage the context its own words may lack."""
        context = " > ".join(p for p in (title, self.heading) if p)
        return f"{context}\n{self.text}" if context else self.text


@dataclass(frozen=True)
class _Piece:
    text: str
    words: int
    section: int
    heading: str | None
    starts_section: bool
    continues: bool = False  # the same paragraph as the piece before it (joined by a space)


def _words(text: str) -> int:
    return len(text.split())


def split_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in sentences(paragraph) if s.strip()]


def _pieces_of(text: str, max_words: int) -> list[tuple[str, bool]]:
    """A section's text as pieces of at most ``max_words``: paragraphs, else sentences, else word runs.

    Each piece comes with whether it continues the paragraph of the piece before it.
    """
    out: list[tuple[str, bool]] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if _words(paragraph) <= max_words:
            out.append((paragraph, False))
            continue
        # Line-structured text (tables, lists, code) has no sentence ends: cut between lines first.
        lines = paragraph.splitlines()
        parts = split_sentences(paragraph) if len(lines) < 3 else lines
        first = True
        for part in parts:
            words = part.split()
            runs = [" ".join(words[i:i + max_words]) for i in range(0, len(words), max_words)] or [""]
            for run in runs:
                if run:
                    out.append((run, not first))
                    first = False
    return out


def _heading_paths(sections: tuple[Section, ...]) -> list[str | None]:
    # Headings nest by level: a level-2 heading lives under the last level-1 heading before it.
    stack: list[tuple[int, str]] = []
    paths: list[str | None] = []
    for section in sections:
        if section.heading:
            level = section.level or 1
            stack = [(lvl, h) for lvl, h in stack if lvl < level] + [(level, section.heading.strip())]
        paths.append(" > ".join(h for _, h in stack) if stack else None)
    return paths


# A mail's parts that are not indexed with it: its signature and footer repeat in every message, and the
# history it quotes is indexed once, with the message it comes from (a reply names that message in its
# In-Reply-To/References headers; a mail without them keeps its quotes, the only copy the index sees).
MAIL_SKIPPED = ("Signature", "Footer")


def _indexed_sections(doc: Document) -> tuple[Section, ...]:
    if doc.kind != "email":
        return doc.sections
    replies = bool(doc.metadata.get("in_reply_to") or doc.metadata.get("references"))
    return tuple(Section("", s.heading, s.level) if s.heading in MAIL_SKIPPED or (replies and s.heading == "Quoted")
                 else s for s in doc.sections)


def chunk_document(doc: Document, *, max_words: int = MAX_WORDS, overlap_words: int = OVERLAP_WORDS,
                   min_words: int = MIN_WORDS) -> list[Chunk]:
    """The document's chunks, in order. A document with no text has none."""
    sections = _indexed_sections(doc) or (Section(doc.text),)
    # A mail's sections are labelled "Headers" and "Body": structure, not headings worth repeating.
    paths = _heading_paths(sections) if doc.kind != "email" else [None] * len(sections)
    pieces: list[_Piece] = []
    for number, (section, path) in enumerate(zip(sections, paths, strict=True)):
        for i, (text, continues) in enumerate(_pieces_of(section.text, max_words)):
            pieces.append(_Piece(text, _words(text), number, path, i == 0, continues))

    chunks: list[Chunk] = []
    current: list[_Piece] = []
    count = 0

    def emit() -> None:
        nonlocal current, count
        if not current:
            return
        first = current[0]
        text = ""
        for piece in current:
            # A merged-in section keeps its heading as a line, so no words are lost from the chunk.
            if piece.starts_section and piece is not first and piece.heading and piece.heading != first.heading:
                text += "\n\n" + piece.heading.rsplit(" > ", 1)[-1]
            if text:
                text += " " if piece.continues else "\n\n"
            text += piece.text
        chunks.append(Chunk(text, len(chunks), first.section, first.heading))
        current, count = [], 0

    for piece in pieces:
        if current and piece.starts_section and count >= min_words:
            emit()  # a new heading starts a new chunk, unless the one so far is too small to stand alone
        if current and count + piece.words > max_words:
            previous = current
            emit()
            if previous[-1].section == piece.section:
                # Carry the tail of the previous chunk over, sentence by sentence, up to the overlap size.
                tail: list[_Piece] = []
                words = 0
                for sentence in reversed(split_sentences(previous[-1].text)):
                    n = _words(sentence)
                    if words + n > overlap_words or words + n + piece.words > max_words:
                        break
                    tail.insert(0, _Piece(sentence, n, piece.section, piece.heading, False, True))
                    words += n
                current, count = tail, words
        current.append(piece)
        count += piece.words
    emit()
    return chunks
