"""Sentence splitting with no model to load: for summaries, sentiment per sentence and chunking.

A rule splitter: a sentence ends at ``.``, ``!`` or ``?`` (with closing quotes or brackets) followed by
space and a capital, digit or opening quote, unless the word before is a known abbreviation or a single
initial ("Dr. Smith", "U.S. officials", "J. R. Tolkien"). Line breaks that separate paragraphs, list
items or headings also end sentences. Good for prose; spaCy's parser does better on odd text, at the
cost of loading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ABBREVIATIONS = frozenset("""
mr mrs ms dr prof sr jr st mt ft vs etc inc ltd co corp dept univ gov gen col lt sgt capt cmdr adm rev
hon pres sen rep no nos vol fig figs approx est jan feb mar apr jun jul aug sep sept oct nov dec
mon tue tues wed thu thur thurs fri sat sun e.g i.e cf al viz ca a.m p.m u.s u.k u.n e.u ph.d
""".split())

_END = re.compile(r"""([.!?…]+["'”’)\]]*)(\s+)(?=["'“‘(\[]?[A-Z0-9À-Ý])""")
_STANDALONE = re.compile(r"\s*(?:[-*•]|\d+[.)]|#+)\s")


@dataclass(frozen=True)
class Sentence:
    text: str
    start: int  # character offsets in the text given to split_sentences
    end: int


def split_sentences(text: str) -> list[Sentence]:
    """Sentences with their character spans, in order. Whitespace-only pieces are dropped."""
    out: list[Sentence] = []
    for block_start, block in _blocks(text):
        start = 0
        for m in _END.finditer(block):
            before = block[start:m.start(1)]
            last_word = before.rsplit(None, 1)[-1] if before.split() else ""
            if m.group(1).startswith(".") and _is_abbreviation(last_word):
                continue
            _add(out, block, block_start, start, m.end(1))
            start = m.end()
        _add(out, block, block_start, start, len(block))
    return out


def sentences(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


def _blocks(text: str) -> list[tuple[int, str]]:
    """Runs of lines that may hold one sentence across line breaks, with their offsets.

    A blank line ends a block; a list item or heading line is a block of its own (it rarely ends with
    a full stop, so without this it would run into the next line).
    """
    blocks: list[tuple[int, str]] = []
    start = None
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        standalone = bool(_STANDALONE.match(line))
        if not stripped or standalone:
            if start is not None:
                blocks.append((start, text[start:offset]))
                start = None
            if standalone:
                blocks.append((offset, line))
        elif start is None:
            start = offset
        offset += len(line)
    if start is not None:
        blocks.append((start, text[start:]))
    return blocks


def _add(out: list[Sentence], block: str, offset: int, start: int, end: int) -> None:
    piece = block[start:end]
    stripped = piece.strip()
    if not stripped:
        return
    lead = len(piece) - len(piece.lstrip())
    begin = offset + start + lead
    # Inside a sentence, a single line break is just wrapping.
    out.append(Sentence(" ".join(stripped.split()), begin, begin + len(stripped)))


def _is_abbreviation(word: str) -> bool:
    w = word.lower().lstrip("(\"'“‘[")
    if w in ABBREVIATIONS:
        return True
    # A single initial ("J.") or dotted initials ("U.S", "a.m") before the final dot.
    return bool(re.fullmatch(r"(?:[a-z]\.)*[a-z]", w))
