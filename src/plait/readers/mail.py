"""Mail: single messages (.eml), mailboxes (.mbox) and Maildir folders, one Document per message.

Parsed with the standard library (``email`` with the modern policy, ``mailbox``). Each message has its
headers as one section and its body taken apart (:mod:`plait.readers.replies`) into what the sender
wrote (the ``Body`` section), the messages it quotes (``Quoted``, each with its attribution line), a
message it forwards (``Forwarded``), the signature and a legal footer: so an index can match "from Anna"
in the headers and "budget" in the body, and tasks read the sender's own words, not the history below
them (:func:`written_text`). The body is the text/plain part, or the HTML part made plain when there is
no plain text; attachment names are kept in the metadata. Dates are ISO 8601; recipients are To and Cc
together; ``message_id``, ``in_reply_to`` and ``references`` (ids without angle brackets, space-separated)
let messages be threaded (:mod:`plait.readers.threads`).
"""

from __future__ import annotations

import email
import email.errors
import email.policy
import logging
import mailbox
import re
from collections.abc import Iterator
from email.message import EmailMessage, MIMEPart
from email.utils import getaddresses
from pathlib import Path

from plait.errors import InputError
from plait.readers.dates import iso_date
from plait.readers.document import Document, Section, register_folder_reader, register_reader, sections_text
from plait.readers.replies import split_reply
from plait.readers.text import MAX_TEXT_BYTES, decode_bytes, read_bytes

HEADER_FIELDS = ("From", "To", "Cc", "Date", "Subject")
# Section headings of a mail Document, in order; only BODY is what the sender wrote.
HEADERS, BODY, QUOTED, FORWARDED, SIGNATURE, FOOTER = ("Headers", "Body", "Quoted", "Forwarded", "Signature",
                                                      "Footer")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
# What the standard library's mail parser raises on some malformed headers and parts instead of recording a
# defect: seen IndexError ("From: <"), AttributeError and UnboundLocalError (a NameError) inside its address
# parser, HeaderParseError (a MessageError) for a broken encoded word, LookupError for an unknown charset.
MALFORMED = (ValueError, TypeError, IndexError, LookupError, AttributeError, NameError, email.errors.MessageError)
log = logging.getLogger(__name__)


def parse_message(data: bytes, source: str) -> Document:
    """One message from its raw bytes (RFC 5322), with headers and body as sections."""
    if not data.strip():
        raise InputError(f"{source} is empty")
    if b"\x00" in data[:8192]:
        raise InputError(f"{source} looks like binary data, not a mail message")
    try:
        return _parse(data, source)
    except MALFORMED as exc:
        # An InputError, so a mailbox reader or a mail trigger leaves this one message out (or records it
        # as broken) instead of stopping at it on every scan.
        raise InputError(f"{source} is a malformed mail message ({type(exc).__name__}: {exc})") from exc


def _parse(data: bytes, source: str) -> Document:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(msg, EmailMessage):  # pragma: no cover - the default policy makes EmailMessage
        raise InputError(f"{source} is not a mail message")
    if not any(_header(msg, h) for h in ("From", "To", "Subject", "Date", "Message-ID")):
        raise InputError(f"{source} has no mail headers (From, To, Subject…); is it a mail message?")

    metadata: dict[str, str] = {}
    sender = _addresses(msg, "From")
    if sender:
        metadata["sender"] = sender
    recipients = ", ".join(a for a in (_addresses(msg, "To"), _addresses(msg, "Cc")) if a)
    if recipients:
        metadata["recipients"] = recipients
    subject = _header(msg, "Subject")
    if subject:
        metadata["subject"] = subject
    date = iso_date(_header(msg, "Date"))
    if date:
        metadata["date"] = date
    message_id = _header(msg, "Message-ID")
    if message_id:
        metadata["message_id"] = message_id.strip().strip("<>")
    for field, name in (("In-Reply-To", "in_reply_to"), ("References", "references")):
        ids = message_ids(_header(msg, field))
        if ids:
            metadata[name] = " ".join(ids[-1:] if name == "in_reply_to" else ids)
    body, attachments, is_html = _body(msg, source)
    if attachments:
        metadata["attachments"] = ", ".join(attachments)

    header_text = "\n".join(f"{h}: {v}" for h in HEADER_FIELDS if (v := _header(msg, h)))
    reply = split_reply(body, sender=metadata.get("sender", ""), subject=subject, html=is_html)
    if reply.answers is not None and reply.answers.author:
        metadata["answers"] = reply.answers.author
    if reply.forwarded.get("from"):
        metadata["forwarded_from"] = reply.forwarded["from"]
    sections = [Section(header_text, HEADERS, 1), Section(reply.text, BODY, 1)]
    sections += [Section(f"{q.attribution}\n{q.text}" if q.attribution else q.text, QUOTED, 2)
                 for q in reply.quotes if not reply.forwarded]
    sections += [Section(reply.forwarded["text"], FORWARDED, 2)] if reply.forwarded.get("text") else []
    sections += [Section(reply.signature, SIGNATURE, 2)] if reply.signature else []
    sections += [Section(reply.footer, FOOTER, 2)] if reply.footer else []
    # The whole message as a person reads it; tasks read written_text(), the sender's own part.
    full = body if not is_html else sections_text([s for s in sections[1:]])
    text = f"{header_text}\n\n{full}".strip()
    return Document(source=source, kind="email", text=text, title=subject or None, sections=tuple(sections),
                    metadata=metadata)


def message_ids(value: str) -> list[str]:
    """The Message-IDs in a References or In-Reply-To header, in order, without angle brackets."""
    found = _MESSAGE_ID.findall(value or "")
    if not found and value and "@" in value and " " not in value.strip():
        found = [value.strip()]  # a bare id some clients write without brackets
    return list(dict.fromkeys(found))


def section(doc: Document, heading: str) -> str:
    """The text of a mail Document's section(s) of that heading ("" when it has none)."""
    return "\n\n".join(s.text for s in doc.sections if s.heading == heading and s.text.strip())


def written_text(doc: Document) -> str:
    """What the sender of a mail wrote (its Body section); for a forward with no words of the sender's own,
    the forwarded message; for another kind of Document, its text."""
    if doc.kind != "email" or not doc.sections:
        return doc.text
    return section(doc, BODY) or section(doc, FORWARDED)


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except MALFORMED:  # a malformed header: keep the rest of the message
        return ""
    return " ".join(str(value).split()) if value else ""


def _addresses(msg: EmailMessage, name: str) -> str:
    try:
        raw = msg.get_all(name)
    except MALFORMED:  # a malformed header: keep the rest of the message
        return ""
    if not raw:
        return ""
    try:
        pairs = getaddresses([str(v) for v in raw])
    except (ValueError, TypeError, IndexError):
        return _header(msg, name)
    if any(address and not display for display, address in pairs):
        pairs = _comment_names(msg, name, pairs)
    out = []
    for display, address in pairs:
        if display and address:
            out.append(f"{display} <{address}>")
        elif address or display:
            out.append(address or display)
    return ", ".join(out)


def _comment_names(msg: EmailMessage, name: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Names given the old way, as a comment ("anna@example.org (Anna Berg)", as Usenet writes): the
    parsed header drops them, the raw one has them."""
    from email.header import decode_header, make_header

    named: dict[str, str] = {}
    try:
        for key, value in msg.raw_items():
            if key.lower() == name.lower():
                for display, address in getaddresses([str(value)]):
                    if display and address:
                        named[address.lower()] = str(make_header(decode_header(display)))
    except (ValueError, TypeError, IndexError, LookupError):
        return pairs
    return [(display or named.get(address.lower(), ""), address) for display, address in pairs]


def _body(msg: EmailMessage, source: str) -> tuple[str, list[str], bool]:
    """(the body's text, attachment names, whether the text is HTML markup)."""
    attachments = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename and (part.get_content_disposition() == "attachment" or part.get_content_maintype() != "text"):
            attachments.append(filename)
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is not None and body.get_content_subtype() == "plain" and not _part_text(body).strip():
        body = msg.get_body(preferencelist=("html",)) or body  # an empty plain part beside the real HTML one
    if body is None:
        return "", attachments, False
    text = _part_text(body)
    return text.strip(), attachments, body.get_content_subtype() == "html"


def _part_text(part: MIMEPart) -> str:
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        # An unknown or wrong charset: decode the raw payload ourselves.
        payload = part.get_payload(decode=True)
        return decode_bytes(payload, name="mail body") if isinstance(payload, bytes) else str(payload or "")
    if isinstance(content, bytes):
        return decode_bytes(content, name="mail body")
    return str(content)


def _read_eml(path: Path) -> Iterator[Document]:
    yield parse_message(read_bytes(path, what="mail messages"), str(path))


def _read_mbox(path: Path) -> Iterator[Document]:
    size = path.stat().st_size
    if size > 20 * MAX_TEXT_BYTES:
        raise InputError(f"{path} is {size / 1e9:.1f} GB; split the mailbox to read it")
    with path.open("rb") as fh:
        head = fh.read(8192)
    if head and not head.startswith(b"From "):
        raise InputError(f"{path} is not an mbox mailbox (it must start with a 'From ' line)")
    box = mailbox.mbox(str(path), create=False)
    try:
        yield from _messages(box, path)
    finally:
        box.close()


def is_maildir(path: Path) -> bool:
    return path.is_dir() and all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _read_maildir(path: Path) -> Iterator[Document]:
    box = mailbox.Maildir(str(path), factory=None, create=False)
    yield from _messages(box, path)


def _messages(box: mailbox.Mailbox[mailbox.Message], path: Path) -> Iterator[Document]:
    keys = sorted(box.keys(), key=str)
    for number, key in enumerate(keys, start=1):
        try:
            data = box.get_bytes(key)
        except (KeyError, OSError):
            continue  # removed while we were reading (Maildirs change under a running mail client)
        # "#n" is stable within the mailbox as long as it is only appended to; Maildir keys are stable.
        tag = str(key) if isinstance(box, mailbox.Maildir) else str(number)
        try:
            yield parse_message(data, f"{path}#{tag}")
        except InputError as exc:
            # One broken message does not hide the rest of the mailbox; the warning says which one was
            # left out (the index records it as the mailbox's reason for being partly read).
            log.warning("message %s of %s skipped: %s", tag, path, exc)
            continue


register_reader((".eml",), _read_eml)
register_reader((".mbox", ".mbx"), _read_mbox)
register_folder_reader("Maildir", is_maildir, _read_maildir)
