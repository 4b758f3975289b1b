"""What the sender of a mail wrote: the new text apart from quoted history, attribution lines, signatures
and footers, in plain-text and HTML mail, in several languages.

A reply carries much that its sender did not write: the message it answers (quoted with ``>``, or below
an "-----Original Message-----" block, or in an HTML ``<blockquote>``), the line that introduces it ("On
Tue, Anna wrote:", "Am Montag schrieb Anna:", "In article <…> anna@… writes:"), a signature and a legal
footer. Tasks that read mail (classify, summarize, extract, the index) read :attr:`Reply.text`, what the
sender wrote; the quoted part stays available (:attr:`Reply.quotes`, :attr:`Reply.answers`) so a summary
can say what a reply answers.

The patterns come from two maintained libraries: ``quotequail`` (reply and forward markers in nine
languages, Outlook/Gmail/Apple Mail header blocks and their HTML forms) and ``mail-parser-reply``
(attribution headers, signatures, "Sent from my…" lines and disclaimers in thirteen languages). Neither
reads Usenet's interleaved quoting ("In article <id>, X writes:" then ``>`` lines between the answers),
so quoted lines are found line by line here and each quote's attribution is the line just before it.
Two signatures no library catches are also recognised: a closing block naming the sender (their name or
address, from the From header) and an ASCII-art box. Without the libraries (``pip install
'plait[readers]'``) only ``>`` quotes and ``--`` signatures are recognised, and a warning says so once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from functools import cache
from typing import Any

log = logging.getLogger(__name__)

# A quoted line: ">" or "}" (any depth, "> >" too, after a little indentation); newsreaders also quote with
# ":", "#" or "|" ("|>"), which count only below an attribution or another quote (a "|" box is no quote).
_QUOTED = re.compile(r"^[ \t]{0,3}(?:\|\s?|[A-Z]{1,3})?[>}]")  # "MB>": Supercite's initials
_WEAK_QUOTED = re.compile(r"^[ \t]{0,3}[:#|]")
_QUOTE_MARKS = re.compile(r"^[ \t]{0,3}(?:[A-Z]{1,3}>)?(?:[>}:#|][ \t]?)*")
# The RFC 3676 signature separator ("-- "), and the bare "--" many clients write.
_SIG_SEPARATOR = re.compile(r"^\s*--\s*$")
# Usenet's attribution, which neither library knows: "In article <id>, X writes:", "X (Y) writes:".
_USENET_ATTRIBUTION = re.compile(r"^(?:in (?:article|message)\b|in <[^>]+>).*|.*\b(?:writes|wrote|said|says)\b\W*$",
                                 re.IGNORECASE)
# A line that introduces a quote in any language: it ends with ":" and names an address or a time.
_INTRODUCES = re.compile(r"(?:[\w.+-]+@[\w-]+\.[\w.-]+|\b\d{1,2}[:.]\d{2}\b).*:\s*$")
_RULE = re.compile(r"^\s*([_=-])\1{4,}\s*$")
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|fw|wg|tr|rv|i|enc|doorst|vs|vb|pd)\s*:", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MAX_ATTRIBUTION_LINES = 3  # an attribution wrapped over this many lines at most
MAX_SIGNATURE_LINES = 12  # a closing block longer than this is text, not a signature


@dataclass(frozen=True)
class Quote:
    """A quoted passage: the text (quote marks removed) and who wrote it, from its attribution line."""

    text: str
    attribution: str | None = None  # the line that introduced it, as written
    author: str | None = None  # the name (or address) the attribution or the quoted headers give


@dataclass(frozen=True)
class Reply:
    """A mail body taken apart. ``text`` is what the sender wrote, in order, quoted parts left out."""

    text: str
    quotes: tuple[Quote, ...] = ()
    signature: str = ""
    footer: str = ""  # disclaimers, confidentiality notices, mailing-list footers
    forwarded: dict[str, str] = field(default_factory=dict)  # a forwarded message: from, subject, date, text
    answers: Quote | None = None  # the passage the sender answers first (the quote just before their text)

    @property
    def quoted(self) -> str:
        """The quoted history as one text (each quote's attribution line before it)."""
        parts = []
        for q in self.quotes:
            parts.append(f"{q.attribution}\n{q.text}" if q.attribution else q.text)
        return "\n\n".join(p.strip() for p in parts if p.strip())

    @property
    def attributions(self) -> tuple[str, ...]:
        return tuple(q.attribution for q in self.quotes if q.attribution)


# --- the libraries' patterns, compiled once ----------------------------------------------------------

@dataclass(frozen=True)
class _Patterns:
    reply: tuple[re.Pattern[str], ...]  # attribution lines ("On … wrote:") in many languages
    forward: tuple[re.Pattern[str], ...]  # "Begin forwarded message:", "-----Original Message-----"
    header: re.Pattern[str] | None  # a quoted message's header block ("From:/Sent:/To:", "Da:/Inviato:/A:")
    signature: re.Pattern[str] | None  # closing phrases, "Sent from my…", to the end of the text
    disclaimer: re.Pattern[str] | None
    available: bool


@cache
def _patterns() -> _Patterns:
    try:
        from mailparser_reply.constants import MAIL_LANGUAGES
        from mailparser_reply.parser import EmailMessage
        from quotequail import _patterns as qq
    except ImportError:
        log.warning("quotequail and mail-parser-reply are not installed: mail is read with '>' quotes and "
                    "'--' signatures only; install them with: pip install 'plait[readers]'")
        return _Patterns((), (), None, None, None, available=False)
    languages = [name for name in MAIL_LANGUAGES if len(name) == 2]
    message = EmailMessage(text="", languages=list(languages), keep_hyphen_lists=True)
    reply = [*qq.COMPILED_PATTERN_MAP["reply"]]
    for language in languages:
        wrote = MAIL_LANGUAGES[language].get("wrote_header")
        if isinstance(wrote, str):
            reply.append(re.compile(wrote, re.IGNORECASE))
    return _Patterns(tuple(reply), tuple(qq.COMPILED_PATTERN_MAP["forward"]), message.HEADER_REGEX,
                     message.SIGNATURE_REGEX, message.DISCLAIMERS_REGEX, available=True)


def _is_attribution(line: str) -> bool:
    line = line.strip()
    if not line or len(line) > 300:
        return False
    if any(p.search(line) for p in _patterns().reply):
        return True
    return bool(_USENET_ATTRIBUTION.match(line) or _INTRODUCES.search(line))


def _is_forward_marker(line: str) -> bool:
    return any(p.match(line.strip()) for p in _patterns().forward)


# --- plain text --------------------------------------------------------------------------------------

def split_reply(body: str, *, sender: str = "", subject: str = "", html: bool = False) -> Reply:
    """Take a mail body apart (``html`` when it is the HTML part); ``sender`` (the From header) helps find
    a signature that names them, ``subject`` tells a forward ("Fwd: …") from a reply."""
    text = html_to_quoted_text(body) if html else body
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    top, history, forwarded = _top_posted(text, subject)
    new_blocks, quotes = _interleaved(top.split("\n"))
    if history is not None:
        quotes.append(history)
    signature, footer = "", ""
    if new_blocks:
        last, footer = _footer(new_blocks[-1])
        last, signature = _signature(last, sender)
        new_blocks[-1] = last
        if not new_blocks[-1].strip():
            new_blocks.pop()
    new = "\n\n".join(b.strip("\n") for b in new_blocks if b.strip())
    answers = _answered(quotes) or (history if history is not None and history.text else None)
    return Reply(_tidy(new), tuple(q for q in quotes if q.text.strip()), signature.strip(), footer.strip(),
                 forwarded, answers)


def _tidy(text: str) -> str:
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _top_posted(text: str, subject: str) -> tuple[str, Quote | None, dict[str, str]]:
    """(the text above quoted history, that history, a forward's headers): Outlook and Gmail put the whole
    earlier message below a marker ("-----Original Message-----", "On … wrote:", a From/Sent/To block)."""
    if not _patterns().available:
        return text, None, {}
    import quotequail

    try:
        found = quotequail.unwrap(text)
    except (ValueError, IndexError, AttributeError):  # the library fails on a few odd bodies: read it by lines
        found = None
    if not found or found.get("type") not in ("reply", "forward"):
        return _header_block(text, subject)
    if not found.get("text_top", "").strip() and not _FORWARD_SUBJECT.match(subject or ""):
        # Nothing above the "history" of a mail that is no forward: header lines pasted at the top of a
        # post, not a message it answers; read it line by line instead.
        return text, None, {}
    inner = found.get("text", "")
    top = "\n\n".join(part for part in (found.get("text_top", ""), found.get("text_bottom", "")) if part)
    author = _display_name(found.get("from", "")) or None
    introduction = _introduction(text, found)
    top_lines = found.get("text_top", "").rstrip().split("\n")
    if top_lines and _is_attribution(top_lines[-1]):  # "In article <id> X writes:" above quoted headers
        introduction = top_lines[-1].strip()
        author = _attribution_author(introduction) or author
        top = "\n".join(top_lines[:-1]) + ("\n\n" + found["text_bottom"] if found.get("text_bottom") else "")
    quote = Quote(inner, introduction, author)
    forwarded: dict[str, str] = {}
    if found["type"] == "forward" and _FORWARD_SUBJECT.match(subject or ""):
        forwarded = {k: str(found[k]) for k in ("from", "to", "subject", "date") if found.get(k)}
        forwarded["text"] = inner
    return top, quote, forwarded


def _header_block(text: str, subject: str) -> tuple[str, Quote | None, dict[str, str]]:
    """History below a header block in a language quotequail does not know ("Da:/Inviato:/A:/Oggetto:")."""
    pattern = _patterns().header
    if pattern is None:
        return text, None, {}
    for match in pattern.finditer(text):
        start = match.start() + (len(match.group()) - len(match.group().lstrip("\n")))
        first = text[start:].split("\n", 1)[0]
        if start == 0 or _QUOTED.match(first) or not text[:start].strip():
            continue
        inner = text[match.end():].strip()
        quote = Quote(inner, first.strip(), _attribution_author(first) or None)
        forwarded: dict[str, str] = {}
        if _FORWARD_SUBJECT.match(subject or ""):
            forwarded = {"from": _attribution_author(first) or first.strip(), "text": inner}
        return text[:start], quote, forwarded
    return text, None, {}


def _introduction(text: str, found: dict[str, Any]) -> str | None:
    """The line that introduced the history (its marker or attribution), as written in the text."""
    top = found.get("text_top", "")
    at = text.find(top) if top else -1
    rest = text[at + len(top):] if at >= 0 else text
    for line in rest.split("\n"):
        if line.strip():
            return line.strip()
    return None


def _interleaved(lines: Sequence[str]) -> tuple[list[str], list[Quote]]:
    """New-text blocks and quotes of a body that quotes with ">" between its own paragraphs."""
    quoted = _quoted_lines(lines)
    # A blank line between two quoted lines belongs to the quote.
    for i, line in enumerate(lines):
        if not quoted[i] and not line.strip():
            before = next((quoted[j] for j in range(i - 1, -1, -1) if lines[j].strip()), False)
            after = next((quoted[j] for j in range(i + 1, len(lines)) if lines[j].strip()), False)
            quoted[i] = before and after
    attribution = [False] * len(lines)
    starts = [i for i in range(len(lines)) if quoted[i] and (i == 0 or not quoted[i - 1])]
    owners: dict[int, str] = {}
    for start in starts:
        span = _attribution_before(lines, quoted, start)
        if span:
            first, last = span
            for j in range(first, last + 1):
                attribution[j] = True
            owners[start] = " ".join(lines[j].strip() for j in range(first, last + 1))
    blocks: list[str] = []
    quotes: list[Quote] = []
    current: list[str] = []
    i = 0
    while i < len(lines):
        if quoted[i]:
            if any(s.strip() for s in current):
                blocks.append("\n".join(current))
            current = []
            start = i
            while i < len(lines) and quoted[i]:
                i += 1
            inner = "\n".join(_QUOTE_MARKS.sub("", lines[j]) for j in range(start, i)).strip()
            owner = owners.get(start)
            quotes.append(Quote(inner, owner, _attribution_author(owner) if owner else None))
            continue
        if not attribution[i]:
            current.append(lines[i])
        i += 1
    if any(s.strip() for s in current):
        blocks.append("\n".join(current))
    return blocks, quotes


def _quoted_lines(lines: Sequence[str]) -> list[bool]:
    """Which lines are quoted: by a strong mark; by a weak one below an attribution or another quote; or
    indented below an attribution (some newsreaders indent the quoted text instead of marking it)."""
    quoted = [bool(_QUOTED.match(line)) for line in lines]
    # Two or more lines in a row opened (not closed) by "|": a newsreader's quote, even without attribution;
    # a signature box closes its lines with "|" too.
    barred = [line.lstrip()[:1] == "|" and line.rstrip()[-1:] != "|" for line in lines]
    for i in range(len(lines)):
        if barred[i] and ((i > 0 and barred[i - 1]) or (i + 1 < len(lines) and barred[i + 1])):
            quoted[i] = True
    context = False  # the last non-blank line was quoted, or an attribution
    indented = False  # inside an indented quote below an attribution
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            continue
        if quoted[i]:
            context, indented = True, False
            continue
        weak = _WEAK_QUOTED.match(line) and not (text[0] == "|" and text[-1] == "|")
        if context and weak:
            quoted[i] = True
            continue
        if indented and line[:2].isspace():
            quoted[i] = True
            continue
        attribution = _is_attribution(text) and len(text.split()) <= 30
        following = next((lines[j] for j in range(i + 1, len(lines)) if lines[j].strip()), "")
        indented = attribution and following[:2].isspace() and not _QUOTED.match(following)
        context = attribution
    return quoted


def _attribution_before(lines: Sequence[str], quoted: list[bool], start: int) -> tuple[int, int] | None:
    """The lines (first, last) of the attribution just above a quote, if there is one."""
    j = start - 1
    while j >= 0 and not lines[j].strip():
        j -= 1
    if j < 0 or quoted[j]:
        return None
    last = j
    for first in range(last, max(-1, last - MAX_ATTRIBUTION_LINES), -1):
        if quoted[first] or not lines[first].strip():
            break
        joined = " ".join(lines[k].strip() for k in range(first, last + 1))
        if _is_attribution(joined):
            # Wrapped: "In article <id>" / "anna@… (Anna) writes:" — take the line above too when it
            # opens the attribution rather than ending a sentence of the sender's.
            while first > 0 and not quoted[first - 1] and _opens_attribution(lines[first - 1]) \
                    and last - first + 1 < MAX_ATTRIBUTION_LINES:
                first -= 1
            return first, last
    return None


def _opens_attribution(line: str) -> bool:
    text = line.strip()
    if re.match(r"(?:in (?:article|message)\b|in <|on\s)", text, re.IGNORECASE):
        return True
    return bool(text) and text[-1] not in ".!?" and "@" in text


def _attribution_author(line: str) -> str | None:
    """Who an attribution line names: "(Rob Strom)", "Anna Berg <anna@…>", ", Anna wrote:", an address."""
    paren = re.search(r"\(([^()@]{2,60})\)", line)
    if paren:
        return paren.group(1).strip()
    named = re.search(r"([^\W\d_][\w.'-]*(?: [^\W\d_][\w.'-]*){0,3})\s*<[^<>@\s]+@[^<>\s]+>", line)
    if named:
        return named.group(1).strip()
    before_verb = re.search(r",\s*([^,<>@]{2,60}?)\s+(?:wrote|writes|schrieb|a écrit|escribió|skrev|schreef|"
                            r"escreveu|napsal|написал)", line, re.IGNORECASE)
    if before_verb:
        return before_verb.group(1).strip()
    # "<…>" right after "In article" is a Message-ID, not an address: leave bracketed ids out.
    addresses = _ADDRESS.findall(re.sub(r"<[^<>]*>", " ", line))
    return addresses[-1] if addresses else None


def _answered(quotes: list[Quote]) -> Quote | None:
    """The quote the sender answers first: the one just before their first own paragraph."""
    return next((q for q in quotes if q.text.strip()), None)


def _display_name(value: str) -> str:
    value = re.sub(r"\s*\[mailto:[^\]]*\]", "", value).strip()  # Outlook's "Anna Berg [mailto:…]"
    if "@" not in value:
        return value.strip('"')  # a bare name: parseaddr would keep only its first word
    name, address = parseaddr(value)
    return name or address


# --- signatures and footers --------------------------------------------------------------------------

def _signature(block: str, sender: str) -> tuple[str, str]:
    """(the block without its signature, the signature): signatures are taken off the end one at a time
    (some posts carry two, a typed one above the newsreader's)."""
    signatures: list[str] = []
    while True:
        rest, signature = _last_signature(block, sender)
        if not signature.strip():
            break
        signatures.insert(0, signature)
        block = rest
        if not rest.strip():
            break
    return block, "\n".join(signatures)


def _last_signature(block: str, sender: str) -> tuple[str, str]:
    lines = block.rstrip().split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if _SIG_SEPARATOR.match(lines[i].rstrip()):
            return "\n".join(lines[:i]), "\n".join(lines[i + 1:])
    # A rule ("_____", "-----", "=====") with a few lines below it: a signature or a legal footer.
    for i in range(len(lines) - 1, max(0, len(lines) - MAX_SIGNATURE_LINES - 2), -1):
        if _RULE.match(lines[i]) and any(line.strip() for line in lines[i + 1:]) and any(
                line.strip() for line in lines[:i]):
            return "\n".join(lines[:i]), "\n".join(lines[i:])
    pattern = _patterns().signature
    if pattern is not None:
        for match in pattern.finditer(block):
            first_line = match.group().strip().split("\n", 1)[0]
            # A closing phrase on its own line ("Best regards,"); "Thanks, that helps…" is text.
            lines_after = sum(1 for line in match.group().split("\n") if line.strip())
            if len(first_line.split()) <= 4 and match.start() > 0 and lines_after <= MAX_SIGNATURE_LINES:
                return block[: match.start()], block[match.start():]
    return _closing_block(lines, sender)


def _closing_block(lines: list[str], sender: str) -> tuple[str, str]:
    """A signature without a separator: the closing lines that name the sender (name, initials, address)
    or draw a box, with the short mottos between them."""
    names = _name_words(sender)
    end = len(lines)
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    cut = end
    # Lines at the very end that are only the sender's name, initials or address ("   Benedikt").
    while cut > 0 and _names_sender(lines[cut - 1], names, sender):
        cut -= 1
    paragraphs = _paragraphs(lines[:cut])
    for start, stop in reversed(paragraphs):
        marks = [_signature_line(lines[k], names, sender) for k in range(start, stop)]
        if marks[0] and marks[-1]:
            cut = start  # a paragraph framed by signature lines (a box, colours) is signature throughout
            continue
        if any(marks):
            # The signature runs up through its own lines and short ones (a title, a company name).
            k = stop
            while k > start and (marks[k - 1 - start] or _title_like(lines[k - 1])):
                k -= 1
            cut = k
            if k > start:
                break  # prose above the signature lines in the same paragraph: the signature starts here
        elif stop - start > 3:
            break  # a real paragraph of text: the signature (if any) is below it
        if end - cut > MAX_SIGNATURE_LINES * 2:
            break
    if cut == end or not any(line.strip() for line in lines[:cut]):
        return "\n".join(lines), ""
    if sum(1 for line in lines[cut:end] if line.strip()) > MAX_SIGNATURE_LINES:
        return "\n".join(lines), ""  # too long for a signature: it is text
    return "\n".join(lines[:cut]), "\n".join(lines[cut:end])


def _paragraphs(lines: list[str]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    start = None
    for i, line in enumerate(lines):
        if line.strip() and start is None:
            start = i
        elif not line.strip() and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(lines)))
    return out


def _title_like(line: str) -> bool:
    """A short line that is no sentence: a job title, a company name ("Export Sales Manager")."""
    text = line.strip()
    return bool(text) and len(text.split()) <= 6 and text[-1] not in ".!?:;,"


_CONTACT = re.compile(r"[\w.+-]+@[\w-]+\.\w|https?://|www\.|\b(?:tel|fax|phone|mobile|cell|e-?mail)\b|"
                      r"\d[\d ./()-]{6,}\d", re.IGNORECASE)


def _signature_line(line: str, names: set[str], sender: str) -> bool:
    """A line of a signature: it names the sender, draws a box, or gives contact details."""
    if _names_sender(line, names, sender, loose=True) or _boxy(line) or "\x1b[" in line:  # ANSI colours: decoration
        return True
    return len(line.split()) <= 10 and bool(_CONTACT.search(line))


def _name_words(sender: str) -> set[str]:
    name, address = parseaddr(sender)
    if "(" in sender and ")" in sender:  # Usenet's "address (Full Name)"
        name = sender[sender.find("(") + 1: sender.rfind(")")]
        address = address or sender[: sender.find("(")].strip()
    words = {w.lower() for w in re.findall(r"[^\W\d_]{2,}", name)}
    local = address.split("@")[0].lower() if "@" in address else ""
    if local:
        words.add(local)
    parts = re.findall(r"[^\W\d_]+", name)
    if len(parts) >= 2:
        words.add("".join(p[0] for p in parts).lower())  # initials ("bd")
    return words


def _names_sender(line: str, names: set[str], sender: str, *, loose: bool = False) -> bool:
    stripped = line.strip()
    if not stripped or not names:
        return False
    address = _ADDRESS.search(sender)
    if address and address.group().lower() in stripped.lower():
        return True
    words = [w.lower() for w in re.findall(r"[^\W\d_]+", stripped)]
    if not words or len(words) > (8 if loose else 4):
        return False
    initials = {w[0] for w in names}
    known = [w in names or (len(w) == 1 and w in initials) for w in words]
    if all(known):
        return True
    # A signature line: the full name among other words ("Brian Day   New Technology, Inc.").
    return loose and sum(1 for w, k in zip(words, known, strict=True) if k and len(w) > 2) >= 2


def _boxy(line: str) -> bool:
    """A line of an ASCII-art box or rule: mostly drawing characters, or framed by them."""
    chars = line.strip()
    if len(chars) < 3:
        return False
    drawing = sum(1 for c in chars if c in "|/\\_=*-+#~^<>")
    if drawing / len(chars) >= 0.5 or sum(1 for c in chars[:10] if c in "|/\\_=*-+#~^<>") >= 5:
        return True
    return chars[0] in "|/\\+#*" and chars[-1] in "|/\\+#*" and len(chars) > 10


def _footer(block: str) -> tuple[str, str]:
    pattern = _patterns().disclaimer
    if pattern is None:
        return block, ""
    match = pattern.search(block)
    if match is None or match.start() == 0:
        return block, ""
    return block[: match.start()], block[match.start():]


# --- HTML -------------------------------------------------------------------------------------------

def html_to_quoted_text(markup: str) -> str:
    """The text of an HTML mail with its quoted parts marked by "> " as a plain-text mail would be: the
    content of ``<blockquote>`` and whatever follows an Outlook/Gmail history marker (found by quotequail)."""
    from plait.readers.document import sections_text
    from plait.readers.html import parse_html

    top, rest = markup, ""
    if _patterns().available:
        import quotequail

        try:
            parts = quotequail.quote_html(markup)
        except (ValueError, IndexError, AttributeError):
            parts = [(True, markup)]
        top = "".join(html for shown, html in parts if shown)
        rest = "".join(html for shown, html in parts if not shown)
    text = sections_text(parse_html(_mark_blockquotes(top)).sections)
    if rest.strip():
        quoted = sections_text(parse_html(rest).sections)
        text += "\n\n" + "\n".join(f"> {line}" for line in quoted.split("\n"))
    return text


def _mark_blockquotes(markup: str) -> str:
    if "blockquote" not in markup.lower():
        return markup
    from plait.readers.document import sections_text
    from plait.readers.html import _soup, parse_html

    soup = _soup(markup)
    for quote in soup.find_all("blockquote"):
        if quote.find_parent("blockquote") is not None:
            continue
        inner = sections_text(parse_html(str(quote)).sections)
        pre = soup.new_tag("pre")
        pre.string = "\n".join(f"> {line}" for line in inner.split("\n"))
        quote.replace_with(pre)
    return str(soup)
