"""Readers turn files and bytes into text, one module per format (used by tasks, the index and triggers)."""

from plait.readers import text  # noqa: F401  (registers the plain-text reader)
from plait.readers.document import Document, Section, read_document, read_documents, register_reader
from plait.readers.text import decode_bytes, read_text

__all__ = ["Document", "Section", "decode_bytes", "read_document", "read_documents", "read_text", "register_reader"]
