"""The mail-reading patterns of two maintained libraries, compiled once: quotequail's reply and forward
markers (nine languages, Outlook/Gmail/Apple Mail) and mail-parser-reply's attribution headers, header
blocks, signatures, "Sent from my…" lines and disclaimers (thirteen languages). Without them (``pip install
'plait[readers]'``) mail is read with ``>`` quotes and ``--`` signatures only, and a warning says so once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Patterns:
    reply: tuple[re.Pattern[str], ...]  # attribution lines ("On … wrote:") in many languages
    forward: tuple[re.Pattern[str], ...]  # "Begin forwarded message:", "-----Original Message-----"
    header: re.Pattern[str] | None  # a quoted message's header block ("From:/Sent:/To:", "Da:/Inviato:/A:")
    signature: re.Pattern[str] | None  # closing phrases, "Sent from my…", to the end of the text
    disclaimer: re.Pattern[str] | None
    available: bool


@cache
def library_patterns() -> Patterns:
    try:
        from mailparser_reply.constants import MAIL_LANGUAGES
        from mailparser_reply.parser import EmailMessage
        from quotequail import _patterns as qq
    except ImportError:
        log.warning("quotequail and mail-parser-reply are not installed: mail is read with '>' quotes and "
                    "'--' signatures only; install them with: pip install 'plait[readers]'")
        return Patterns((), (), None, None, None, available=False)
    languages = [name for name in MAIL_LANGUAGES if len(name) == 2]
    message = EmailMessage(text="", languages=list(languages), keep_hyphen_lists=True)
    reply = [*qq.COMPILED_PATTERN_MAP["reply"]]
    for language in languages:
        wrote = MAIL_LANGUAGES[language].get("wrote_header")
        if isinstance(wrote, str):
            reply.append(re.compile(wrote, re.IGNORECASE))
    return Patterns(tuple(reply), tuple(qq.COMPILED_PATTERN_MAP["forward"]), message.HEADER_REGEX,
                     message.SIGNATURE_REGEX, message.DISCLAIMERS_REGEX, available=True)
