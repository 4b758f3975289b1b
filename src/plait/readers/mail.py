"""Mail: single messages (.eml), mailboxes (.mbox) and Maildir folders, one Document per message.

Parsed with the standard library (``email`` with the modern policy, ``mailbox``). Each message has two
sections, its headers and its body, so an index can match "from Anna" in the one and "budget" in the
other. The body is the text/plain part, or the HTML part made plain when that is all there is;
attachment names are kept in the metadata. Dates are ISO 8601; recipients are To and Cc together.
"""

from __future__ import annotations

import email
import email.policy
import logging
import mailbox
from collections.abc import Iterator
from email.message import EmailMessage, MIMEPart
from email.utils import getaddresses
from pathlib import Path

from plait.errors import InputError
from plait.readers.dates import iso_date
from plait.readers.document import Document, Section, register_folder_reader, register_reader
from plait.readers.text import MAX_TEXT_BYTES, decode_bytes, read_bytes

HEADER_FIELDS = ("From", "To", "Cc", "Date", "Subject")
log = logging.getLogger(__name__)


def parse_message(data: bytes, source: str) -> Document:
    """One message from its raw bytes (RFC 5322), with headers and body as sections."""
    if not data.strip():
        raise InputError(f"{source} is empty")
    if b"\x00" in data[:8192]:
        raise InputError(f"{source} looks like binary data, not a mail message")
    msg = email.message_from_bytes(data, policy=email.policy.default)
    if not isinstance(msg, EmailMessage):  # pragma: no cover - the default policy makes EmailMessage
        raise InputError(f"{source} is not a mail message")
    if not any(msg.get(h) for h in ("From", "To", "Subject", "Date", "Message-ID")):
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
        metadata["message_id"] = message_id.strip("<>")
    body, attachments = _body(msg, source)
    if attachments:
        metadata["attachments"] = ", ".join(attachments)

    header_text = "\n".join(f"{h}: {v}" for h in HEADER_FIELDS if (v := _header(msg, h)))
    sections = (Section(header_text, "Headers", 1), Section(body, "Body", 1))
    text = f"{header_text}\n\n{body}".strip()
    return Document(source=source, kind="email", text=text, title=subject or None, sections=sections,
                    metadata=metadata)


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, TypeError, IndexError):  # a malformed header: keep the rest of the message
        return ""
    return " ".join(str(value).split()) if value else ""


def _addresses(msg: EmailMessage, name: str) -> str:
    raw = msg.get_all(name) if msg.get(name) is not None else None
    if not raw:
        return ""
    try:
        pairs = getaddresses([str(v) for v in raw])
    except (ValueError, TypeError, IndexError):
        return _header(msg, name)
    out = []
    for display, address in pairs:
        if display and address:
            out.append(f"{display} <{address}>")
        elif address or display:
            out.append(address or display)
    return ", ".join(out)


def _body(msg: EmailMessage, source: str) -> tuple[str, list[str]]:
    attachments = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        filename = part.get_filename()
        if filename and (part.get_content_disposition() == "attachment" or part.get_content_maintype() != "text"):
            attachments.append(filename)
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is None:
        return "", attachments
    text = _part_text(body)
    if body.get_content_subtype() == "html":
        from plait.readers.document import sections_text
        from plait.readers.html import parse_html

        text = sections_text(parse_html(text).sections)
    return text.strip(), attachments


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
