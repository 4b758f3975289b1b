"""Checking a generated sentence against the evidence: does every fact in it come from the evidence?

A small model copies the wrong number ("2" for "211"), names someone the passages never mention, or
adds a clause of its own. The checks here are where those slips show, and they need no model:

- every number the sentence states is stated by one evidence sentence (or the question), after writing
  numbers one way ("1,000" and "1000", "eight" and "8");
- every name (a capitalised word that is not a function word) is in that sentence or the question;
- most of its words (stemmed, ``MIN_COVERAGE`` of the non-function words) are in that sentence or the
  question, and at least one comes from the evidence sentence itself.

And the sentence must hold the kind of thing the question asks for (a person for "who", a number for
"how many"; see :mod:`plait.tasks.evidence`): "The Prime Minister is the person elected on the first
ballot" passes the word checks and names no one. It must also keep every such thing its evidence
sentence gives: the model rephrases, it does not choose among the sentence's candidate answers. From
"126 runs off 151 balls, taking the total to 277" the built-in model answered "126 runs" to a question
about the total, and it placed an epicentre "240 kilometres north-east of Perth" where the evidence
named Burakin: both passed the word checks, both lost the fact. All against one evidence sentence at a time: a claim
stitched from words of several sentences is not supported by any of them. A sentence that passes is
cited to the evidence sentences that support it; one that fails is not shown as the answer
(:mod:`plait.tasks.ask` puts the evidence in its place). The checks are lexical: a sentence can pass
them and still misread its evidence (reversing who did what), which is why the evidence is always
shown beside the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from plait.index.terms import STOPWORDS, stems
from plait.tasks.evidence import (
    NUMBER_WORDS,
    Evidence,
    answer_spans,
    names,
    numbers,
    question_kind,
    signs,
    without_possessive,
)

# Share of a generated sentence's words (stemmed, function words aside) that must be found in the
# evidence or the question. Chosen on the dev questions (`python bench/ask.py --fit`).
MIN_COVERAGE = 0.75
# Sentences a model writes to say it cannot answer: not a claim, nothing to check.
_REFUSAL = re.compile(r"\b(do(es)? not (say|mention|contain|state|provide)|don'?t know|not (mentioned|stated|"
                      r"provided|given)|no (information|mention)|cannot (answer|find|determine)|unknown|"
                      r"not enough information)\b", re.I)
_CITATION = re.compile(r"\s*\[[\d\s,;:.]+\]")


@dataclass(frozen=True)
class Check:
    sentence: str  # as the model wrote it, citations removed
    supported: bool
    reason: str | None  # why not, for people reading the rejected sentences
    cites: tuple[tuple[int, int], ...]  # (source, sentence) of the evidence it draws on, best first


def is_refusal(sentence: str) -> bool:
    return bool(_REFUSAL.search(sentence))


def strip_citations(text: str) -> str:
    return _CITATION.sub("", text).strip()


def check(sentence: str, evidence: Sequence[Evidence], question: str) -> Check:
    """Whether ``sentence`` states only what one of the ``evidence`` sentences (with the question) states.

    Each evidence sentence is tried on its own: words gathered from several sentences can make a claim
    none of them makes ("the Prime Minister is elected by the People's Alliance Party…").
    """
    sentence = strip_citations(sentence)
    own, question_stems, *evidence_stems = stems([sentence, question] + [e.text for e in evidence])
    stop = set(stems([" ".join(sorted(STOPWORDS))])[0])
    words = [w for w in dict.fromkeys(own) if w not in stop]
    if not words:
        return Check(sentence, False, "it says nothing of substance", ())
    kind = question_kind(question)
    own_spans, *evidence_spans = answer_spans(kind, [sentence] + [e.text for e in evidence], question)
    if signs(kind, [own_spans])[0] < 0:
        return Check(sentence, False, f"it does not give what the question asks for (a {kind})", ())
    asked = set(question_stems)
    question_words = {w.lower() for w in re.findall(r"[\w'’-]+", question)}
    passed: list[tuple[float, float, int, int]] = []
    reasons: list[tuple[float, str]] = []
    for e, held, spans in zip(evidence, evidence_stems, evidence_spans, strict=True):
        held_set = set(held)
        covered = [w for w in words if w in held_set or w in asked]
        coverage = len(covered) / len(words)
        # The reason given is that of the evidence sentence closest to the claim.
        missing_numbers = numbers(sentence) - numbers(e.text) - numbers(question)
        if missing_numbers:
            reasons.append((coverage, f"the number(s) {', '.join(sorted(missing_numbers))} are not in the evidence"))
            continue
        known = question_words | {w.lower() for w in re.findall(r"[\w'’-]+", e.text)}
        known |= {without_possessive(w) for w in known}  # "Thomas's" in the evidence knows "Thomas"
        missing_names = {n for n in names(sentence) if n not in known and without_possessive(n) not in known}
        if missing_names:
            reasons.append((coverage, f"{', '.join(sorted(missing_names))} not in the evidence"))
            continue
        from_evidence = sum(w in held_set and w not in asked for w in words)
        if coverage < MIN_COVERAGE or not from_evidence:
            new = [w for w in words if w not in covered]
            reasons.append((coverage, "words not in the evidence: " + ", ".join(new[:6]) if new
                            else "it only repeats the question"))
            continue
        left_out = [thing for thing in dict.fromkeys(e.text[a:b] for a, b in spans) if not keeps(sentence, thing)]
        if left_out:
            reasons.append((coverage, f"it leaves out {', '.join(left_out)}, which the evidence gives"))
            continue
        passed.append((-coverage, -e.score, e.source, e.sentence))
    if not passed:
        reason = max(reasons, key=lambda r: r[0])[1] if reasons else "no evidence to check it against"
        return Check(sentence, False, reason, ())
    return Check(sentence, True, None, tuple((s, n) for _, _, s, n in sorted(passed)[:2]))


def keeps(sentence: str, thing: str) -> bool:
    """Whether the sentence states ``thing`` (a number, name or date of the evidence): its numbers, written
    one way, and its other words, ignoring case and function words."""
    wanted = numbers(thing)
    words = {w.lower() for w in re.findall(r"[^\W\d_][\w'’-]*", thing)} - STOPWORDS - NUMBER_WORDS.keys()
    held = {w.lower() for w in re.findall(r"[^\W\d_][\w'’-]*", sentence)}
    held |= {without_possessive(w) for w in held}
    return wanted <= numbers(sentence) and words <= held
