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
Signatures and footers: :mod:`plait.readers.signatures`; the libraries' patterns:
:mod:`plait.readers.mail_patterns`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any

from plait.readers.mail_patterns import library_patterns
from plait.readers.signatures import split_footer, split_signature

# A quoted line: ">" or "}" (any depth, "> >" too, after a little indentation); newsreaders also quote with
# ":", "#" or "|" ("|>"), which count only below an attribution or another quote (a "|" box is no quote).
_QUOTED = re.compile(r"^[ \t]{0,3}(?:\|\s?|[A-Z]{1,3})?[>}]")  # "MB>": Supercite's initials
_WEAK_QUOTED = re.compile(r"^[ \t]{0,3}[:#|]")
_QUOTE_MARKS = re.compile(r"^[ \t]{0,3}(?:[A-Z]{1,3}>)?(?:[>}:#|][ \t]?)*")
# Usenet's attribution, which neither library knows: "In article <id>, X writes:", "X (Y) writes:".
_USENET_ATTRIBUTION = re.compile(r"^(?:in (?:article|message)\b|in <[^>]+>).*|.*\b(?:writes|wrote|said|says)\b\W*$",
                                 re.IGNORECASE)
# A line that introduces a quote in any language: it ends with ":" and names an address or a time.
_INTRODUCES = re.compile(r"(?:[\w.+-]+@[\w-]+\.[\w.-]+|\b\d{1,2}[:.]\d{2}\b).*:\s*$")
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|fw|wg|tr|rv|i|enc|doorst|vs|vb|pd)\s*:", re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MAX_ATTRIBUTION_LINES = 3  # an attribution wrapped over this many lines at most


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


def _is_attribution(line: str) -> bool:
    line = line.strip()
    if not line or len(line) > 300:
        return False
    if any(p.search(line) for p in library_patterns().reply):
        return True
    return bool(_USENET_ATTRIBUTION.match(line) or _INTRODUCES.search(line))


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
        last, footer = split_footer(new_blocks[-1])
        last, signature = split_signature(last, sender)
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
    if not library_patterns().available:
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
    pattern = library_patterns().header
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
    named = re.search(r"(?:^|(?<=[\s,\"']))([^\W\d_][\w.'-]*(?: [^\W\d_][\w.'-]*){0,3})\s*<[^<>@\s]+@[^<>\s]+>", line)
    if named:
        return named.group(1).strip()
    before_verb = re.search(r",\s*(?<![@\w.])([^,<>@]{2,60}?)\s+(?:wrote|writes|schrieb|a écrit|escribió|skrev|schreef|"
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


# --- HTML -------------------------------------------------------------------------------------------

def html_to_quoted_text(markup: str) -> str:
    """The text of an HTML mail with its quoted parts marked by "> " as a plain-text mail would be: the
    content of ``<blockquote>`` and whatever follows an Outlook/Gmail history marker (found by quotequail)."""
    from plait.readers.document import sections_text
    from plait.readers.html import parse_html

    top, rest = markup, ""
    if library_patterns().available:
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
