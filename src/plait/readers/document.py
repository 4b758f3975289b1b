"""What every reader produces: a Document with its text, structure and metadata.

Readers are registered by file suffix (one module per format); ``read_documents`` picks the reader and
yields one Document per file, or one per message for mailboxes (mbox, Maildir). Folders that are one
document store (a Maildir) have folder readers, recognised by their layout rather than a suffix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from plait.errors import InputError


@dataclass(frozen=True)
class Section:
    """A structural part of a document: a heading and its text, a page, a mail header block or body."""

    text: str
    heading: str | None = None
    level: int = 0  # heading depth (1 = top) where the format has one


@dataclass(frozen=True)
class Document:
    source: str  # file path, or "path#KEY" for one message of a mailbox (its Maildir key, or number in an mbox)
    kind: str  # txt, md, html, pdf, docx, email, csv, json…
    text: str  # the whole text, as a person would read it
    title: str | None = None
    sections: tuple[Section, ...] = ()
    # Known keys: author, sender, recipients, date (ISO 8601), subject, pages, encoding.
    metadata: dict[str, str] = field(default_factory=dict)


Reader = Callable[[Path], Iterator[Document]]
READERS: dict[str, Reader] = {}
# (name, "is this folder one of mine?", reader): checked in registration order.
FOLDER_READERS: list[tuple[str, Callable[[Path], bool], Reader]] = []


def register_reader(suffixes: tuple[str, ...], reader: Reader) -> None:
    for suffix in suffixes:
        if suffix in READERS:
            raise ValueError(f"a reader for '{suffix}' is registered twice")
        READERS[suffix] = reader


def register_folder_reader(name: str, recognises: Callable[[Path], bool], reader: Reader) -> None:
    if any(existing == name for existing, _, _ in FOLDER_READERS):
        raise ValueError(f"a folder reader '{name}' is registered twice")
    FOLDER_READERS.append((name, recognises, reader))


def reader_for(path: Path) -> Reader:
    # The built-in readers are registered: importing this module imported the package, which imports them.
    if path.is_dir():
        for _, recognises, reader in FOLDER_READERS:
            if recognises(path):
                return reader
        kinds = ", ".join(name for name, _, _ in FOLDER_READERS) or "none"
        raise InputError(f"{path} is a folder; give a file (folders plait reads as one store: {kinds})")
    suffix = path.suffix.lower()
    if suffix not in READERS:
        known = ", ".join(sorted(READERS))
        raise InputError(f"{path}: plait cannot read '{suffix or 'no suffix'}' files; it reads {known}")
    return READERS[suffix]


def can_read(path: str | Path) -> bool:
    """Whether some reader takes this path (by suffix, or a folder layout such as a Maildir)."""
    try:
        reader_for(Path(path))
    except InputError:
        return False
    return True


def read_documents(path: str | Path) -> Iterator[Document]:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist")
    yield from reader_for(p)(p)


def read_document(path: str | Path) -> Document:
    """The one Document of a file (the first message, for a mailbox)."""
    for doc in read_documents(path):
        return doc
    raise InputError(f"{path} has no readable content")


def sections_text(sections: tuple[Section, ...] | list[Section]) -> str:
    """The whole text of a document made of sections: headings on their own line, blank lines between."""
    parts = []
    for s in sections:
        body = s.text.strip()
        if s.heading and body:
            parts.append(f"{s.heading}\n{body}")
        elif s.heading:
            parts.append(s.heading)
        elif body:
            parts.append(body)
    return "\n\n".join(parts)
