"""Does an answer state the expected fact? A normalised substring match, the same for every benchmark.

Both texts are lower-cased; number words up to twenty become digits; thousands separators are dropped
("3,000" is "3000"); "%" and "per cent" become "percent"; other punctuation becomes spaces (a decimal
point between digits is kept). The expected answer must then appear as whole words in the answer.
"""

from __future__ import annotations

import re

NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
                "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
                "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
                "eighteen": "18", "nineteen": "19", "twenty": "20"}


def normalise(text: str) -> str:
    t = text.lower().replace("%", " percent").replace("per cent", "percent")
    t = re.sub(r"(?<=\d),(?=\d{3})", "", t)
    t = re.sub(r"(?<=\d)\.(?=\d)", "<dot>", t)
    t = re.sub(r"[^\w<>]+", " ", t).replace("<dot>", ".")
    return " " + " ".join(NUMBER_WORDS.get(w, w) for w in t.split()) + " "


def states(text: str, answers: list[str] | tuple[str, ...]) -> bool:
    """Whether ``text`` contains one of ``answers`` (normalised, as whole words)."""
    norm = normalise(text)
    return any(normalise(a).strip() and normalise(a) in norm for a in answers)
