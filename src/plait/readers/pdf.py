"""PDF: the text layer, one section per page, with title, author and dates from the document info.

Read with pypdf (pure Python). A PDF encrypted with an empty user password (common for "no copying"
PDFs) is opened; one that needs a password, a damaged file, or a scan with no text layer gets an
error that says so rather than an empty document.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from plait.errors import InputError, MissingDependency
from plait.readers.dates import iso_date
from plait.readers.document import Document, Section, register_reader, sections_text
from plait.readers.text import read_bytes

MAX_PDF_BYTES = 500 * 1024 * 1024


def _pypdf() -> Any:
    try:
        import pypdf
    except ImportError as exc:
        raise MissingDependency("reading PDF files", extra="readers", package="pypdf") from exc
    # pypdf logs a warning for every small defect it repairs; the user cannot act on those.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    return pypdf


def read_pdf_bytes(data: bytes, name: str) -> Document:
    pypdf = _pypdf()
    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise InputError(f"{name} is not a PDF file (no %PDF header); check the file or its suffix")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except pypdf.errors.DependencyError as exc:
                raise MissingDependency("reading AES-encrypted PDF files", package="cryptography") from exc
            if not opened:
                raise InputError(f"{name} is password-protected; save an unprotected copy and read that")
        pages: list[Section] = []
        for number, page in enumerate(reader.pages, start=1):
            text = page.extract_text() or ""
            pages.append(Section(_tidy(text), f"Page {number}", 1))
        info = reader.metadata or {}
    except (InputError, MissingDependency):
        raise
    except pypdf.errors.FileNotDecryptedError as exc:
        raise InputError(f"{name} is password-protected; save an unprotected copy and read that") from exc
    except (pypdf.errors.PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError, AssertionError) as exc:
        # pypdf raises a variety of errors on damaged files; all mean the same to the user.
        raise InputError(f"{name} is damaged or not a readable PDF ({type(exc).__name__}: {exc})") from exc
    if not any(p.text.strip() for p in pages):
        raise InputError(f"{name} has no text layer (a scanned PDF?); run OCR on it first")
    metadata = {"pages": str(len(pages))}
    for key, field in (("author", "/Author"), ("subject", "/Subject")):
        value = _info(info, field)
        if value:
            metadata[key] = value
    for key, field in (("date", "/CreationDate"), ("modified", "/ModDate")):
        value = _info(info, field)
        if value and iso_date(value):
            metadata[key] = iso_date(value) or value
    title = _info(info, "/Title") or None
    return Document(source=name, kind="pdf", text=sections_text(pages), title=title,
                    sections=tuple(pages), metadata=metadata)


def _info(info: Any, key: str) -> str:
    try:
        value = info.get(key)
    except Exception:  # noqa: BLE001 - a broken info dictionary only loses metadata
        return ""
    return str(value).strip() if value else ""


def _tidy(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "\n".join(line for line in lines if line).strip()


def _read_pdf(path: Path) -> Iterator[Document]:
    doc = read_pdf_bytes(read_bytes(path, limit=MAX_PDF_BYTES, what="PDF files"), str(path))
    yield doc if doc.title else Document(doc.source, doc.kind, doc.text, path.stem, doc.sections, doc.metadata)


register_reader((".pdf",), _read_pdf)
