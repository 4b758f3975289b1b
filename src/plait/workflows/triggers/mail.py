"""Mail on disk: a Maildir folder or an mbox file, one item per message.

Messages are parsed by plait's mail reader (:func:`plait.readers.mail.parse_message`). Each item holds the
message's fields (``subject``, ``sender``, ``date``, ``body``, ``text``…) so the workflow can finish even if
the message is later moved or deleted, and ``path`` (Maildir) for sinks that move or tag it. ``body`` is
what the sender wrote (quoted history, attribution lines, signature and footer taken out; a forward's
message when the sender wrote nothing; else the subject); ``quoted``, ``answers`` (who the reply answers),
``signature`` and ``full_body`` keep the rest; ``message_id``, ``in_reply_to`` and ``references`` thread it.
A task step that reads documents (summarize, extract, sentiment) gets the message back as a mail Document
(:func:`item_document`), so it reads the sender's words and resolves dates against the mail's own Date.

- Maildir: the key is the message's unique Maildir name (the part before ``:2,``), which stays the same
  when a mail client moves it from ``new/`` to ``cur/`` or changes its flags.
- mbox: the key is a hash of the message's bytes (mbox has no stable ids; positions shift on expunge).
  A file that only grew (new mail appended) is read on from where the last scan ended; any other change
  is read whole, streamed, a message at a time.

Keys already recorded are skipped before the message is parsed, so a rescan of a large mailbox is cheap.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import InputError
from plait.workflows.errors import TriggerError
from plait.workflows.triggers import Trigger, TriggerItem, TriggerOptions

if TYPE_CHECKING:
    from plait.readers.document import Document


def mail_item(raw: bytes, source: str, *, path: str | None = None) -> tuple[dict[str, Any], float | None]:
    """An item's data from one raw RFC 5322 message, and its date as Unix seconds."""
    from plait.readers.mail import QUOTED, SIGNATURE, parse_message, section, written_text

    try:
        doc = parse_message(raw, source)
        meta = dict(doc.metadata)
        written = written_text(doc)
        data: dict[str, Any] = {
            "kind": "email", "source": source, "subject": meta.get("subject", ""),
            "sender": meta.get("sender", ""), "recipients": meta.get("recipients", ""), "date": meta.get("date", ""),
            "message_id": meta.get("message_id", ""), "in_reply_to": meta.get("in_reply_to", ""),
            "references": meta.get("references", ""), "attachments": meta.get("attachments", ""),
            "body": written or meta.get("subject", ""), "quoted": section(doc, QUOTED),
            "answers": meta.get("answers", ""), "forwarded_from": meta.get("forwarded_from", ""),
            "signature": section(doc, SIGNATURE), "full_body": doc.text.partition("\n\n")[2], "text": doc.text,
        }
    except InputError as exc:
        # A broken message is still an item, so the scan goes on past it: its text is the raw message and
        # ``parse_error`` says why (a workflow's step can test it in its ``when``).
        text = raw.decode("utf-8", "replace")
        data = {"kind": "email", "source": source, "subject": "", "sender": "", "recipients": "", "date": "",
                "message_id": "", "in_reply_to": "", "references": "", "attachments": "", "body": text,
                "quoted": "", "answers": "", "forwarded_from": "", "signature": "", "full_body": text, "text": text,
                "parse_error": str(exc)}
    if path:
        data["path"] = path
    at = None
    if data["date"]:
        try:
            at = datetime.fromisoformat(data["date"]).timestamp()
        except ValueError:
            at = None
    return data, at


def item_document(item: Mapping[str, Any]) -> Document | None:
    """The mail Document a mail trigger's item came from (None for other items): tasks that read documents
    get it, so they read the sender's own words and the mail's date."""
    from plait.readers.document import Document, Section
    from plait.readers.mail import BODY, HEADERS, QUOTED

    if item.get("kind") != "email" or item.get("parse_error"):
        return None
    metadata = {key: str(item[key]) for key in ("sender", "recipients", "subject", "date", "message_id",
                                                "in_reply_to", "references", "answers") if item.get(key)}
    headers = "\n".join(f"{name}: {item[key]}" for name, key in (("From", "sender"), ("To", "recipients"),
                                                                 ("Date", "date"), ("Subject", "subject"))
                        if item.get(key))
    sections = [Section(headers, HEADERS, 1), Section(str(item.get("body") or ""), BODY, 1)]
    if item.get("quoted"):
        sections.append(Section(str(item["quoted"]), QUOTED, 2))
    return Document(source=str(item.get("source") or ""), kind="email", text=str(item.get("text") or ""),
                    title=str(item.get("subject") or "") or None, sections=tuple(sections), metadata=metadata)


class MaildirOptions(TriggerOptions):
    path: str
    folders: tuple[str, ...] = ("new", "cur")


class MaildirTrigger(Trigger):
    Options = MaildirOptions
    options: MaildirOptions

    def _root(self) -> Path:
        from plait.workflows.context import resolve_path

        root = resolve_path(self.options.path, self.env.base_dir)
        if not root.is_dir():
            raise TriggerError(f"Maildir {root} does not exist (moved, deleted or unmounted?); items already "
                               "read are kept; fix the trigger's path")
        if not any((root / sub).is_dir() for sub in ("new", "cur")):
            raise TriggerError(f"{root} is not a Maildir (no new/ or cur/ inside); point the trigger at a "
                               "Maildir folder")
        return root

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        root = self._root()
        found: dict[str, Path] = {}
        for sub in self.options.folders:
            try:
                names = os.listdir(root / sub)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise TriggerError(f"cannot list {root / sub} ({exc.strerror})") from exc
            for name in names:
                if name.startswith("."):
                    continue
                found.setdefault(name.split(":", 1)[0], root / sub / name)
        keys = sorted(found, key=_arrival)
        known = self.env.known([f"maildir:{k}" for k in keys])
        for name in keys:
            key = f"maildir:{name}"
            if key in known:
                continue
            path = found[name]
            try:
                raw = path.read_bytes()
            except FileNotFoundError:
                # Moved (new/ → cur/, or by another client) between listing and reading: seen next scan.
                continue
            except OSError as exc:
                raise TriggerError(f"cannot read {path} ({exc.strerror})") from exc
            data, at = mail_item(raw, f"{root}#{name}", path=str(path))
            data["maildir_key"] = name
            yield TriggerItem(key, data, at)


_DELIVERY = re.compile(r"^(\d+)\.(?:M(\d+))?")


def _arrival(name: str) -> tuple[int, int, str]:
    """Sort key for Maildir names: delivery second, then microsecond, then the name.

    Names start with ``<seconds>.M<microseconds>P<pid>…``; sorting them as strings puts ``M10056``
    before ``M7853`` within one second, so the numbers are compared as numbers.
    """
    m = _DELIVERY.match(name)
    if m is None:
        return (0, 0, name)
    return (int(m.group(1)), int(m.group(2) or 0), name)


class MboxOptions(TriggerOptions):
    path: str


class MboxTrigger(Trigger):
    Options = MboxOptions
    options: MboxOptions

    def scan(self, cursor: dict[str, Any]) -> Iterator[TriggerItem]:
        from plait.workflows.context import resolve_path

        path = resolve_path(self.options.path, self.env.base_dir)
        if not path.is_file():
            raise TriggerError(f"mbox file {path} does not exist (moved or deleted?); items already read are "
                               "kept; fix the trigger's path")
        stat = path.stat()
        if cursor.get("size") == stat.st_size and cursor.get("mtime_ns") == stat.st_mtime_ns:
            return  # unchanged since the last scan
        # New mail is appended: read on from where the last scan ended, unless the file changed before that.
        start, number = (cursor["size"], cursor["count"]) if _only_appended(path, cursor, stat.st_size) else (0, 0)
        try:
            for batch in _batches(mbox_messages(path, start), KNOWN_BATCH):
                keys = ["mbox:" + hashlib.sha256(raw).hexdigest()[:32] for raw in batch]
                known = self.env.known(keys)
                for raw, key in zip(batch, keys, strict=True):
                    if key not in known:
                        data, at = mail_item(raw, f"{path}#{number}")
                        yield TriggerItem(key, data, at)
                    number += 1
        except OSError as exc:
            raise TriggerError(f"cannot read mbox {path} ({exc})") from exc
        # Moved only once every message was given: a scan stopped part-way reads them again (known keys skip).
        cursor.update(size=stat.st_size, mtime_ns=stat.st_mtime_ns, count=number, tail=_tail_hash(path, stat.st_size))


KNOWN_BATCH = 500  # messages whose keys are looked up at once: a large mailbox is never held whole in memory
_TAIL = 4096  # bytes before the end of the last scan that must be unchanged for it to read on from there
_LINESEP = os.linesep.encode()


def mbox_messages(path: Path, start: int = 0) -> Iterator[bytes]:
    """The raw messages of an mbox file from byte ``start`` (which begins a "From " line), one at a time.

    The same bytes as :meth:`mailbox.mbox.get_bytes` (the same rules for where a message starts and
    stops), so a message has one key whether it was read whole or read on from an earlier scan; streamed,
    where :class:`mailbox.mbox` first indexes the whole file.
    """
    with path.open("rb") as f:
        f.seek(start)
        lines: list[bytes] = []
        started = last_was_empty = False
        for line in f:
            if line.startswith(b"From "):
                if started:
                    yield _message(lines, last_was_empty)
                started, lines, last_was_empty = True, [], False
                continue
            if started:
                lines.append(line)
            last_was_empty = line == _LINESEP
        if started:
            yield _message(lines, last_was_empty)


def _message(lines: list[bytes], last_was_empty: bool) -> bytes:
    if last_was_empty:  # the blank line before the next "From " (or the end) separates, it is not the message's
        lines = lines[:-1]
    return b"".join(lines).replace(_LINESEP, b"\n")


def _only_appended(path: Path, cursor: Mapping[str, Any], size: int) -> bool:
    """Whether the file is the last scan's file with mail added at its end."""
    done = cursor.get("size")
    if not isinstance(done, int) or not isinstance(cursor.get("count"), int) or not 0 < done < size:
        return False
    if cursor.get("tail") != _tail_hash(path, done):
        return False
    with path.open("rb") as f:
        f.seek(done)
        return f.read(5) == b"From "


def _tail_hash(path: Path, size: int) -> str:
    with path.open("rb") as f:
        f.seek(max(0, size - _TAIL))
        return hashlib.sha256(f.read(min(size, _TAIL))).hexdigest()


def _batches(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
