"""Readers turn files and bytes into text, one module per format."""

from plait.readers.text import decode_bytes, read_text

__all__ = ["decode_bytes", "read_text"]
