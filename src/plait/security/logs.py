"""Redacting log lines: e-mail addresses, phone, card and IBAN numbers and IP addresses become ``<KIND>``.

plait's log lines never hold request bodies, but an error message can quote what a person sent (a file
name, an address), and the access log holds each client's address. The filter runs the pattern
recognizers only (no NER: a log line must cost microseconds, not a model call) and keeps loopback and
unspecified addresses, which identify no one.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from typing import Any

from plait.security.pii import CARD, EMAIL, IBAN, IP, PHONE, Detector, Finding, default_detector
from plait.security.placeholders import apply

LOG_ENTITIES = (EMAIL, PHONE, IBAN, CARD, IP)


def _personal(text: str, finding: Finding) -> bool:
    if finding.entity != IP:
        return True
    try:
        address = ipaddress.ip_address(text[finding.start:finding.end])
    except ValueError:
        return True
    return not (address.is_loopback or address.is_unspecified)


def redact_line(text: str, detector: Detector | None = None) -> str:
    found = (detector or default_detector(nlp=False)).detect(text, LOG_ENTITIES)
    return apply(text, [f for f in found if _personal(text, f)], None)[0] if found else text


class RedactingFilter(logging.Filter):
    """A handler filter: the record's message, formatted, with personal data masked."""

    def __init__(self, detector: Detector | None = None) -> None:
        super().__init__()
        self.detector = detector

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._json(message) if message.startswith("{") else redact_line(message, self.detector)
        if masked != message:
            record.msg, record.args = masked, None
        return True

    def _json(self, message: str) -> str:
        """A structured line (the access log) keeps its shape: only its text values are redacted (a Unix time
        is not a phone number)."""
        try:
            data = json.loads(message)
        except ValueError:
            return redact_line(message, self.detector)

        def walk(value: Any) -> Any:
            if isinstance(value, str):
                return redact_line(value, self.detector)
            if isinstance(value, dict):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list):
                return [walk(v) for v in value]
            return value

        return json.dumps(walk(data), ensure_ascii=False)
