"""Workflow functions: steps that are not tasks (they make no sense outside a workflow), called like tasks
(``task: read``). ``read`` turns a file of a folder trigger into text and metadata with plait's readers
(folder triggers give paths, not text); over HTTP it would let a request choose a file on the server, so it
is no task. In a workflow its ``path`` is the step's ``with: {path: …}``, else the item's ``path`` (never
the item's text); a path from item data must lie in the trigger's folders, the output folder or a folder
the step lists in ``within``, as a sink's input must (:meth:`StepContext.input_path`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plait.errors import InputError


def read(path: str, *, max_chars: int = 200_000, plain: bool = False) -> dict[str, Any]:
    """The first document of ``path`` (text capped at ``max_chars``), with its title, kind and metadata.

    ``plain`` takes the file's text as it is, decoded but not parsed (an .ics calendar for ``plan``).
    """
    from plait.readers.document import Document, read_document
    from plait.readers.text import read_text

    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{p} does not exist (moved or deleted?)")
    doc = Document(source=str(p), kind="txt", text=read_text(p)) if plain else read_document(p)
    return {"text": doc.text[:max_chars], "title": doc.title or p.stem, "kind": doc.kind, "source": doc.source,
            "metadata": dict(doc.metadata), "chars": len(doc.text), "truncated": len(doc.text) > max_chars}
