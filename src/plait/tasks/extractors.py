"""The built-in extractors: entities, dates and times (ISO 8601), contacts, amounts and action items.

They work on spaCy's analysis of the text (:mod:`plait.tasks.nlp`), with dateparser turning date
phrases into dates, phonenumbers finding phone numbers, and a few patterns for what NER misses
(e-mail addresses, currency symbols spaCy leaves outside a MONEY span). No language model is called:
these are fast, deterministic and never invent a value that is not in the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from plait.errors import MissingDependency
from plait.tasks.nlp import Parsed, Span

ENTITY_LABELS = ("PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW",
                 "LANGUAGE", "DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL", "ORDINAL")


@dataclass(frozen=True)
class Entity:
    text: str
    label: str
    start: int
    end: int


def entities(parsed: Parsed, labels: Iterable[str] | None = None) -> list[Entity]:
    wanted = {label.upper() for label in labels} if labels else None
    return [Entity(s.text, s.label, s.start, s.end) for s in parsed.entities()
            if wanted is None or s.label in wanted]


# --- dates and times --------------------------------------------------------------------------------

Precision = Literal["year", "month", "week", "day", "minute"]


@dataclass(frozen=True)
class DateMention:
    text: str
    iso: str  # "2024", "2024-03", "2024-W10", "2024-03-05" or "2024-03-05T15:00"
    precision: Precision
    start: int
    end: int


_DURATION = re.compile(
    r"^(?:about |around |some |nearly |almost |over |more than |less than |at least |the (?:past|last|next) )?"
    r"(?:\d+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|few|many|\w+-\w+)"
    r"\s+(?:second|minute|hour|day|night|week|month|year|decade|centur(?:y|ies))s?$", re.IGNORECASE)
_DECADE = re.compile(r"\b\d{2,4}'?s\b")
_HAS_TIME = re.compile(r"\d{1,2}:\d{2}|\d\s*(?:a\.?m\.?|p\.?m\.?)\b|\bnoon\b|\bmidnight\b|o'clock",
                       re.IGNORECASE)
_NUMERIC_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b")
_JOINER = re.compile(r"^\s*(?:,|at|@|from|,\s*at)?\s*$", re.IGNORECASE)


def _date_parser(reference: datetime | None, prefer: str) -> Any:
    try:
        from dateparser.date import DateDataParser
    except ImportError as exc:
        raise MissingDependency("dates to ISO 8601", extra="tasks", package="dateparser") from exc
    settings: dict[str, Any] = {"PREFER_DATES_FROM": prefer, "RETURN_AS_TIMEZONE_AWARE": False}
    if reference is not None:
        settings["RELATIVE_BASE"] = reference.replace(tzinfo=None)
    return DateDataParser(languages=["en"], settings=settings)


def dates(parsed: Parsed, *, reference: datetime | None = None,
          prefer: Literal["past", "future", "current_period"] = "current_period") -> list[DateMention]:
    """Dates and times the text mentions, resolved against ``reference`` (default: now).

    Durations ("two weeks") and vague spans ("the 1990s", "annual") are not dates and are skipped; a
    date followed by its time ("Friday at 3pm") becomes one mention.
    """
    spans = [s for s in parsed.entities() if s.label in ("DATE", "TIME")]
    taken = [(s.start, s.end) for s in spans]
    for m in _NUMERIC_DATE.finditer(parsed.text):  # what NER sometimes splits or misses
        if not any(a < m.end() and m.start() < b for a, b in taken):
            spans.append(Span(m.group(), "DATE", m.start(), m.end()))
    spans.sort(key=lambda s: s.start)
    merged: list[Span] = []
    for span in spans:
        prev = merged[-1] if merged else None
        if prev and span.label == "TIME" and _JOINER.match(parsed.text[prev.end:span.start]):
            merged[-1] = Span(parsed.text[prev.start:span.end], "DATE", prev.start, span.end)
        else:
            merged.append(span)
    parser = _date_parser(reference, prefer)
    out = []
    for span in merged:
        mention = _resolve(parser, span)
        if mention is not None:
            out.append(mention)
    return out


def _resolve(parser: Any, span: Span) -> DateMention | None:
    text = span.text.strip()
    if _DURATION.match(text) or _DECADE.search(text):
        return None
    try:
        data = parser.get_date_data(text)
    except (ValueError, OverflowError, TypeError):
        return None
    value = data.date_obj if data else None
    if value is None:
        return None
    period = data.period or "day"
    if _HAS_TIME.search(text):
        iso, precision = value.strftime("%Y-%m-%dT%H:%M"), "minute"
    elif period == "year":
        iso, precision = f"{value.year:04d}", "year"
    elif period == "month":
        iso, precision = value.strftime("%Y-%m"), "month"
    elif period == "week":
        year, week, _ = value.isocalendar()
        iso, precision = f"{year:04d}-W{week:02d}", "week"
    else:
        iso, precision = value.strftime("%Y-%m-%d"), "day"
    return DateMention(span.text, iso, precision, span.start, span.end)  # type: ignore[arg-type]


# --- contacts ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Contact:
    name: str | None = None
    email: str | None = None
    phone: str | None = None  # E.164, e.g. +14155550134
    organization: str | None = None


EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_DISPLAY_NAME = re.compile(r"""["']?([A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,3})["']?\s*[<(]\s*$""")


def contacts(parsed: Parsed, *, region: str = "US") -> list[Contact]:
    """People and organisations with the e-mail addresses and phone numbers given with them.

    An address or number is tied to the person named just before it on the same line ("Anna Berg
    <anna@example.org>", "call Bo on 0412 555 013"); people named without either are listed by name.
    """
    try:
        import phonenumbers
    except ImportError as exc:
        raise MissingDependency("phone numbers in contacts", extra="tasks", package="phonenumbers") from exc
    text = parsed.text
    ents = parsed.entities()
    people = [e for e in ents if e.label == "PERSON"]
    orgs = [e for e in ents if e.label == "ORG"]
    details: list[tuple[int, int, str, str]] = []  # (start, end, kind, value)
    for m in EMAIL.finditer(text):
        details.append((m.start(), m.end(), "email", m.group()))
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        details.append((match.start, match.end, "phone",
                        phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)))
    details.sort()

    records: dict[str, dict[str, str | None]] = {}
    order: list[str] = []

    def record(key: str) -> dict[str, str | None]:
        if key not in records:
            records[key] = {"name": None, "email": None, "phone": None, "organization": None}
            order.append(key)
        return records[key]

    for start, end, kind, value in details:
        line_start = text.rfind("\n", 0, start) + 1
        before = [p for p in people if line_start <= p.start and p.end <= start]
        name = before[-1].text if before else None
        if name is None:
            display = _DISPLAY_NAME.search(text[line_start:start])
            name = display.group(1).strip() if display else None
        key = (name or value).lower()
        rec = record(key)
        rec["name"] = rec["name"] or name
        if rec[kind] is None:
            rec[kind] = value
        elif rec[kind] != value:  # a second address for the same person: its own entry
            other = record(f"{key}#{value}")
            other["name"], other[kind] = name, value
        line_end = text.find("\n", end)
        line_end = len(text) if line_end < 0 else line_end
        org = [o for o in orgs if line_start <= o.start and o.end <= line_end]
        if org and rec["organization"] is None:
            rec["organization"] = org[-1].text
    for person in people:
        name = person.text.strip()
        if name.lower() not in records and not any(name.lower() in k for k in records):
            record(name.lower())["name"] = name
    return [Contact(**records[k]) for k in order]


# --- amounts ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Amount:
    text: str
    kind: Literal["money", "percent", "quantity"]
    value: float | None
    currency: str | None = None  # ISO 4217 code for money
    unit: str | None = None  # for quantities ("kg", "miles")
    start: int = 0
    end: int = 0


CURRENCY_SYMBOLS = {"$": "USD", "US$": "USD", "A$": "AUD", "AU$": "AUD", "C$": "CAD", "NZ$": "NZD",
                    "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW", "₽": "RUB", "CHF": "CHF"}
CURRENCY_WORDS = {"dollar": "USD", "euro": "EUR", "pound": "GBP", "sterling": "GBP", "yen": "JPY",
                  "rupee": "INR", "yuan": "CNY", "franc": "CHF", "peso": "MXN", "won": "KRW", "rouble": "RUB",
                  "ruble": "RUB", "cent": "USD", "pence": "GBP", "penny": "GBP"}
CURRENCY_CODES = ("USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "CNY", "INR", "NZD", "SEK", "NOK", "DKK",
                  "MXN", "BRL", "KRW", "RUB", "ZAR", "SGD", "HKD")
MULTIPLIERS = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "mn": 1e6, "billion": 1e9, "bn": 1e9,
               "b": 1e9, "trillion": 1e12, "tn": 1e12}
_SYMBOL_AMOUNT = re.compile(r"(?:US\$|A\$|AU\$|C\$|NZ\$|[$€£¥₹₩₽])\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:thousand|million|"
                            r"billion|trillion|bn|mn|k|m)\b)?", re.IGNORECASE)
_CODE_AMOUNT = re.compile(r"\b(?:" + "|".join(CURRENCY_CODES) + r")\s?\d[\d,]*(?:\.\d+)?\b|\b\d[\d,]*(?:\.\d+)?\s?(?:"
                          + "|".join(CURRENCY_CODES) + r")\b")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?|\.\d+")
_WORD_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "twenty": 20, "hundred": 100, "a": 1, "an": 1}


def amounts(parsed: Parsed) -> list[Amount]:
    """Money (value and currency), percentages and quantities the text states."""
    text = parsed.text
    spans: list[Span] = []
    for span in parsed.entities():
        if span.label not in ("MONEY", "PERCENT", "QUANTITY"):
            continue
        if span.label == "MONEY":  # spaCy often leaves the symbol outside: "$" + "1,200"
            lead = re.search(r"(?:US\$|A\$|AU\$|C\$|NZ\$|[$€£¥₹₩₽])\s?$", text[max(0, span.start - 4):span.start])
            if lead:
                start = span.start - len(lead.group())
                span = Span(text[start:span.end], span.label, start, span.end)
        spans.append(span)
    for pattern in (_SYMBOL_AMOUNT, _CODE_AMOUNT):
        for m in pattern.finditer(text):
            if not any(s.start < m.end() and m.start() < s.end for s in spans):
                spans.append(Span(m.group(), "MONEY", m.start(), m.end()))
    spans.sort(key=lambda s: s.start)
    return [_amount(s) for s in spans]


def _amount(span: Span) -> Amount:
    text = span.text
    value = _value(text)
    if span.label == "PERCENT":
        return Amount(text, "percent", value, start=span.start, end=span.end)
    if span.label == "QUANTITY":
        m = re.search(r"(?:\d[\d,.]*|\b\w+)\s*([A-Za-z][A-Za-z ]*)$", text)
        return Amount(text, "quantity", value, unit=m.group(1).strip() if m else None, start=span.start,
                      end=span.end)
    return Amount(text, "money", value, _currency(text), start=span.start, end=span.end)


def _value(text: str) -> float | None:
    lowered = text.lower()
    m = _NUMBER.search(lowered)
    if m:
        try:
            value = float(m.group().replace(",", ""))
        except ValueError:
            return None
    else:
        words = [_WORD_NUMBERS[w] for w in re.findall(r"[a-z]+", lowered) if w in _WORD_NUMBERS]
        if not words:
            return None
        value = float(words[0])
    after = lowered[m.end():] if m else lowered
    mult = re.match(r"\s*(thousand|million|billion|trillion|bn|mn|tn|k|m|b)\b", after)
    if mult:
        value *= MULTIPLIERS[mult.group(1)]
    if re.search(r"\b(?:cents?|pence|penny)\b", lowered) and not re.search(r"[$€£]|dollar|euro|pound", lowered):
        value /= 100
    return value


def _currency(text: str) -> str | None:
    for symbol in sorted(CURRENCY_SYMBOLS, key=len, reverse=True):
        if symbol in text:
            return CURRENCY_SYMBOLS[symbol]
    for code in CURRENCY_CODES:
        if re.search(rf"\b{code}\b", text):
            return code
    lowered = text.lower()
    for word, code in CURRENCY_WORDS.items():
        if re.search(rf"\b{word}s?\b", lowered):
            return code
    return None


# --- action items -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ActionItem:
    text: str  # the sentence that asks for it
    owner: str | None  # who is to do it, when the sentence says ("you", "Bo", "we")
    due: str | None  # ISO 8601, when the sentence gives a date
    start: int
    end: int
    action: str = ""  # phrased as an action: "send the report by Friday" (from "Could you send the report by Friday?")


_CUE = re.compile(
    r"\b(?:please|pls|kindly|make sure|don't forget|do not forget|remember to|action(?: item)?s?:|to ?do:|"
    r"todo\b|follow up|follow-up|deadline|asap|no later than)\b|"
    r"\b(?:need|needs|have|has) to\b|\b(?:must|should|shall)\b(?! (?:have|not|be able))|"
    r"\b(?:can|could|would|will) you\b|\blet's\b|\blet us\b|\bi'll\b|\bi will\b|\bwe'll\b|\bwe will\b",
    re.IGNORECASE)
_NON_TASK = re.compile(r"\b(?:thanks|thank you|regards|cheers|hope you|let me know if you have any)\b",
                       re.IGNORECASE)


def action_items(parsed: Parsed, *, reference: datetime | None = None) -> list[ActionItem]:
    """Sentences that ask someone to do something: imperatives ("Send the report by Friday"),
    requests ("Can you call Carl?"), obligations and commitments ("We need to book the venue",
    "I will review the draft"). The owner and the due date are taken from the sentence when it has them.
    """
    due_dates = dates(parsed, reference=reference, prefer="future")
    people = [e for e in parsed.entities() if e.label == "PERSON"]
    items = []
    for offset, sent in parsed.sentences():
        text = sent.text.strip()
        if len(text.split()) < 3 or _NON_TASK.search(text) and len(text.split()) < 8:
            continue
        imperative = _is_imperative(sent)
        if not (imperative or _CUE.search(text)):
            continue
        if _is_past(sent) and not imperative:
            continue
        start, end = offset + sent.start_char, offset + sent.end_char
        owner = _owner(sent, people, start, end, imperative)
        due = next((d.iso for d in due_dates if start <= d.start < end), None)
        items.append(ActionItem(" ".join(text.split()), owner, due, start, end, _phrase(sent)))
    return items


# Verbs whose complement is the action: "we need to book the venue" → "book the venue".
_FRAMES = {"need", "have", "want", "like", "try", "remember", "forget", "mind", "ask", "able", "plan", "hope"}


def _phrase(sent: Any) -> str:
    """The sentence as an action: from its main verb to its end ("Could you please send me the report by
    Friday?" → "send me the report by Friday"); a frame verb hands over to its complement ("we need to book
    the venue" → "book the venue")."""
    verb = sent.root
    for _ in range(2):
        complement = [c for c in verb.children if c.dep_ in ("xcomp", "ccomp") and c.pos_ in ("VERB", "AUX")]
        if verb.lemma_.lower() in _FRAMES and complement:
            verb = complement[0]
        else:
            break
    # Start at the verb, or earlier at a negation or particle that belongs to it ("don't forget" stays whole
    # when it is the root); leave out subjects, modals and "please" before it.
    words = sent.doc.text[verb.idx:sent.end_char]  # the text as written, from the verb to the end
    words = re.sub(r"\s+", " ", re.sub(r"\b(?:please|kindly)\s+", "", words, flags=re.IGNORECASE))
    words = words.strip().rstrip(".!?;:, ")
    words = re.sub(r"\s*,?\s*(?:please|thanks?|thank you)$", "", words, flags=re.IGNORECASE)
    return words[:1].lower() + words[1:] if words[:1].isupper() and not words[1:2].isupper() else words


def _is_imperative(sent: Any) -> bool:
    root = sent.root
    if root.tag_ != "VB" or root.pos_ not in ("VERB", "AUX"):
        return False
    if any(child.dep_ in ("nsubj", "nsubjpass", "expl") for child in root.children):
        return False
    # A bare verb that opens the sentence (after "please", a greeting or a name): "Bo, please send…".
    for token in sent:
        if token.i == root.i:
            return True
        if token.pos_ not in ("INTJ", "PUNCT", "PROPN", "SPACE") and token.lower_ not in ("please", "kindly",
                                                                                        "just", "also", "then"):
            return False
    return False


def _is_past(sent: Any) -> bool:
    root = sent.root
    return root.tag_ in ("VBD", "VBN") and not any(c.lower_ in ("will", "'ll", "must", "should")
                                                   for c in root.children)


def _owner(sent: Any, people: list[Span], start: int, end: int, imperative: bool) -> str | None:
    subjects = [t for t in sent if t.dep_ in ("nsubj", "nsubjpass") and t.head.i == sent.root.i]
    for subj in subjects:
        if subj.lower_ in ("i", "we", "you"):
            return "I" if subj.lower_ == "i" else subj.lower_
        span_people = [p.text for p in people if start <= p.start < end and subj.text in p.text]
        if span_people:
            return span_people[0]
    if imperative:
        # "Bo, please send…": the person addressed, else whoever reads it.
        vocative = [p.text for p in people if start <= p.start < end and p.start - start < 20]
        if not vocative:  # NER misses short names; a proper noun before the verb is the addressee
            vocative = [t.text for t in sent if t.i < sent.root.i and t.pos_ == "PROPN"]
        return vocative[0] if vocative else "you"
    return None
