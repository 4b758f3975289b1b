"""A mail's signature and legal footer: where the sender's own words end.

A signature is taken off the end of what the sender wrote, one at a time (some posts carry two, a typed one
above the newsreader's): below an RFC 3676 ``-- `` separator (or a bare ``--``); below a rule
(``_____``, ``-----``) with a few lines under it; from a closing phrase on its own line ("Best regards,",
"Mit freundlichen Grüßen", "Sent from my iPhone": mail-parser-reply's patterns); and, with no marker at all,
the closing lines that name the sender (their name, initials or address, from the From header), draw an
ASCII-art box or give contact details, with the titles and mottos between them. Disclaimers and
confidentiality notices (mail-parser-reply's patterns) are the footer.
"""

from __future__ import annotations

import re
from email.utils import parseaddr

from plait.readers.mail_patterns import library_patterns

# The RFC 3676 signature separator ("-- "), and the bare "--" many clients write.
_SIG_SEPARATOR = re.compile(r"^\s*--\s*$")
_RULE = re.compile(r"^\s*([_=-])\1{4,}\s*$")
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MAX_SIGNATURE_LINES = 12  # a closing block longer than this is text, not a signature


def split_signature(block: str, sender: str) -> tuple[str, str]:
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
    pattern = library_patterns().signature
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


def split_footer(block: str) -> tuple[str, str]:
    pattern = library_patterns().disclaimer
    if pattern is None:
        return block, ""
    match = pattern.search(block)
    if match is None or match.start() == 0:
        return block, ""
    return block[: match.start()], block[match.start():]
