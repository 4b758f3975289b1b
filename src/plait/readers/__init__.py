"""Readers turn files and bytes into text, one module per format (used by tasks, the index and triggers).

Importing this package registers every built-in reader; each imports its parsing library only when a
file of its format is read.
"""

from plait.readers import docx, html, mail, markdown, pdf, table, text  # noqa: F401  (register readers)
from plait.readers.document import (
    Document,
    Section,
    can_read,
    read_document,
    read_documents,
    register_folder_reader,
    register_reader,
)
from plait.readers.text import decode_bytes, read_text

__all__ = ["Document", "Section", "can_read", "decode_bytes", "read_document", "read_documents", "read_text",
           "register_folder_reader", "register_reader"]
