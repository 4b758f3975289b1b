"""A labelled set for redaction, built from real text with known personal data inserted.

Real news articles (gensim's Lee corpus, packaged) get sentences carrying generated personal data put
between their sentences: names, e-mail addresses, phone numbers valid for their region (libphonenumber),
IBANs with correct mod-97 check digits, card numbers with correct Luhn digits, public IP addresses, street
addresses and cities. Each inserted value's span is recorded, so a detector's findings can be scored per
entity type. Seeded: the same set every run. Used by the integration tests and bench/redact.py.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

FIRST = ["Maria", "Jonas", "Aisha", "Kenji", "Olga", "Pedro", "Fatima", "Liam", "Ingrid", "Tomasz", "Chloe",
         "Rahul", "Sofia", "Mateo", "Hannah", "Yusuf", "Elena", "Arjun", "Grace", "Lukas"]
LAST = ["Gonzalez", "Schneider", "Okafor", "Tanaka", "Petrova", "Almeida", "Haddad", "Murphy", "Lindqvist",
        "Kowalski", "Dubois", "Sharma", "Rossi", "Fernandez", "Becker", "Demir", "Popescu", "Nair", "Walsh", "Novak"]
DOMAINS = ["example.org", "mailbox.net", "uni-heidelberg.de", "posteo.de", "company.co.uk", "gmail.com"]
CITIES = ["Lisbon", "Berlin", "Toronto", "Nairobi", "Osaka", "Warsaw", "Dublin", "Madrid", "Chicago", "Oslo"]
STREETS = ["Elm", "Maple", "Baker", "Harbour", "Church", "Station", "Mill", "Park", "King", "Victoria"]
STREET_TYPES = ["Street", "Road", "Avenue", "Lane", "Drive"]
TEMPLATES = [
    "Please contact {PERSON} at {EMAIL_ADDRESS} about the invoice.",
    "Call {PERSON} on {PHONE_NUMBER} before Friday.",
    "The refund goes to the account {IBAN_CODE} by the end of the month.",
    "The card {CREDIT_CARD} was charged twice last week.",
    "The unusual login came from {IP_ADDRESS} at night.",
    "Send the signed papers to {STREET_ADDRESS}, {LOCATION}.",
    "{PERSON} flew to {LOCATION} on Monday for the meeting.",
    "Her new number is {PHONE_NUMBER} and her address is {EMAIL_ADDRESS}.",
]
ENTITY_TYPES = ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "CREDIT_CARD", "IP_ADDRESS", "LOCATION",
                "STREET_ADDRESS")


@dataclass
class Labelled:
    text: str
    spans: list[tuple[str, int, int]] = field(default_factory=list)  # (entity, start, end) of inserted values
    original: str = ""  # the article before insertion


def _iban(rng: random.Random) -> str:
    country, length = rng.choice([("GB", 18), ("DE", 18), ("FR", 23), ("NL", 14)])
    if country == "GB":
        bban = rng.choice(["NWBK", "BARC", "LOYD"]) + "".join(rng.choice("0123456789") for _ in range(14))
    elif country == "NL":
        bban = rng.choice(["ABNA", "INGB", "RABO"]) + "".join(rng.choice("0123456789") for _ in range(10))
    else:
        bban = "".join(rng.choice("0123456789") for _ in range(length))
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(digits) % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.7 else raw


def _card(rng: random.Random) -> str:
    prefix = rng.choice(["4", "51", "52", "53", "37"])
    length = 15 if prefix == "37" else 16
    body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
    total = 0
    for i, d in enumerate(reversed(body)):  # Luhn: double every second digit from the right of the check digit
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    number = body + str((10 - total % 10) % 10)
    if rng.random() < 0.6 and length == 16:
        return " ".join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def _phone(rng: random.Random) -> str:
    import phonenumbers

    while True:
        region = rng.choice(["US", "GB", "DE", "FR"])
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        national = str(example.national_number)
        candidate = phonenumbers.parse(national[:-4] + f"{rng.randrange(10_000):04d}", region)
        if phonenumbers.is_valid_number(candidate):
            fmt = rng.choice([phonenumbers.PhoneNumberFormat.INTERNATIONAL, phonenumbers.PhoneNumberFormat.NATIONAL])
            if region != "US" and fmt == phonenumbers.PhoneNumberFormat.NATIONAL:
                fmt = phonenumbers.PhoneNumberFormat.INTERNATIONAL  # a foreign national number needs its country
            return str(phonenumbers.format_number(candidate, fmt))


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.2:
        return f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(65536):x}"
    while True:
        a = rng.choice([23, 45, 62, 81, 93, 104, 151, 185, 203, 212])
        address = f"{a}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        return address


def _value(kind: str, rng: random.Random, person: str) -> str:
    first, last = person.split()
    return {
        "PERSON": person,
        "EMAIL_ADDRESS": f"{first.lower()}.{last.lower()}{rng.randrange(100)}@{rng.choice(DOMAINS)}",
        "PHONE_NUMBER": _phone(rng),
        "IBAN_CODE": _iban(rng),
        "CREDIT_CARD": _card(rng),
        "IP_ADDRESS": _ip(rng),
        "LOCATION": rng.choice(CITIES),
        "STREET_ADDRESS": f"{rng.randrange(1, 999)} {rng.choice(STREETS)} {rng.choice(STREET_TYPES)}",
    }[kind]


def labelled_set(n: int = 120, seed: int = 7) -> list[Labelled]:
    from tests.corpora import lee_articles

    rng = random.Random(seed)
    articles = [a for a in lee_articles() if len(a.split()) > 60]
    out = []
    for i in range(n):
        article = " ".join(articles[i % len(articles)].split()[:120])
        sentences = re.split(r"(?<=[.!?])\s+", article)
        inserts = rng.sample(TEMPLATES, k=2)
        positions = sorted(rng.sample(range(len(sentences) + 1), k=2))
        doc = Labelled("", original=article)
        parts: list[str] = []
        for j, sentence in enumerate(sentences + [""]):
            if j in positions:
                template = inserts[positions.index(j)]
                person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                offset = len(" ".join(parts)) + (1 if parts else 0)
                text, pos = "", 0
                for m in re.finditer(r"\{([A-Z_]+)\}", template):
                    text += template[pos:m.start()]
                    value = _value(m.group(1), rng, person)
                    doc.spans.append((m.group(1), offset + len(text), offset + len(text) + len(value)))
                    text += value
                    pos = m.end()
                parts.append(text + template[pos:])
            if sentence:
                parts.append(sentence)
        doc.text = " ".join(parts)
        out.append(doc)
    return out


@dataclass
class Scores:
    tp: dict[str, int] = field(default_factory=dict)
    fp: dict[str, int] = field(default_factory=dict)
    fn: dict[str, int] = field(default_factory=dict)

    def per_type(self) -> dict[str, dict[str, float | int]]:
        out: dict[str, dict[str, float | int]] = {}
        for kind in ENTITY_TYPES:
            tp, fp, fn = self.tp.get(kind, 0), self.fp.get(kind, 0), self.fn.get(kind, 0)
            out[kind] = {"precision": round(tp / (tp + fp), 3) if tp + fp else 1.0,
                         "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0, "tp": tp, "fp": fp, "fn": fn}
        return out


def _overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def score(docs: list[Labelled], findings: list[list[tuple[str, int, int]]],
          natural: list[list[tuple[str, int, int]]]) -> Scores:
    """A finding counts when it covers at least half of an inserted value of its type. Findings that match what
    the detector already found in the article before insertion (``natural``: real names and places of the
    news text, which no one labelled) count neither way; any other finding is a false positive."""
    s = Scores()
    for doc, found, before in zip(docs, findings, natural, strict=True):
        before_texts = {(k, doc.original[a:b]) for k, a, b in before}
        matched: set[int] = set()
        for kind, start, end in found:
            hit = next((i for i, (gk, gs, ge) in enumerate(doc.spans) if gk == kind and i not in matched
                        and _overlap((start, end), (gs, ge)) * 2 >= ge - gs), None)
            if hit is not None:
                matched.add(hit)
                s.tp[kind] = s.tp.get(kind, 0) + 1
            elif (kind, doc.text[start:end]) in before_texts or any(
                    gk == kind and _overlap((start, end), (gs, ge)) for gk, gs, ge in doc.spans):
                continue  # a real mention of the article, or a second finding inside an inserted value
            else:
                s.fp[kind] = s.fp.get(kind, 0) + 1
        for i, (kind, _, _) in enumerate(doc.spans):
            if i not in matched:
                s.fn[kind] = s.fn.get(kind, 0) + 1
    return s
