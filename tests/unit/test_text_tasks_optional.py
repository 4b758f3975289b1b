"""Readers and text tasks fail with a clear MissingDependency naming the extra when its library is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plait.errors import MissingDependency
from plait.readers import read_document
from tests.docfiles import make_pdf


@pytest.mark.parametrize(("name", "content", "module", "extra"), [
    ("a.pdf", make_pdf(["text"]), "pypdf", "readers"),
    ("a.docx", b"PK\x03\x04", "docx", "readers"),
    ("a.html", b"<p>hi</p>", "bs4", "readers"),
])
def test_reader_names_its_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, content: bytes,
                                module: str, extra: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependency, match=rf"plait\[{extra}\]"):
        read_document(path)


def test_tasks_name_their_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    import plait.tasks.nlp as nlp
    import plait.tasks.sentiment as sentiment_module
    from plait.tasks.extract import extract_json

    monkeypatch.setattr(sentiment_module, "_vader", None)
    monkeypatch.setitem(sys.modules, "vaderSentiment.vaderSentiment", None)
    with pytest.raises(MissingDependency, match=r"plait\[tasks\]"):
        sentiment_module.sentiment("Fine.", method="vader")
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(MissingDependency, match=r"plait\[tasks\]"):
        extract_json("text", {"type": "object"})
    monkeypatch.setattr(nlp, "_pipelines", {})
    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(MissingDependency, match=r"plait\[nlp\]"):
        nlp.parse("Anna met Bo.")
