"""`plait summarize|extract|sentiment` in-process, with fake models: inputs, outputs and bad input."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from plait.runtime import Runtime
from tests.cli import plait
from tests.docfiles import make_mailboxes

ARTICLE = ("The council approved the school budget on Monday. Teachers welcomed the extra money. "
           "Critics said roads were ignored. The money arrives in March. Parents were pleased.")


def test_summarize_text_file_and_stdin(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = plait(capsys, "summarize", "-t", ARTICLE, "-m", "fake-embed", "-s", "2")
    assert code == 0, err
    assert len([s for s in out.strip().split(". ") if s]) == 2
    page = tmp_path / "a.md"
    page.write_text(f"# News\n\n{ARTICLE}\n")
    code, out, _ = plait(capsys, "summarize", str(page), "-m", "fake-embed", "--bullets", "-s", "3", "--json")
    data = json.loads(out)
    assert code == 0 and data["source"] == str(page) and len(data["points"]) == 3
    assert data["text"].count("\n- ") == 2
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(ARTICLE.encode("cp1252"))))
    code, out, _ = plait(capsys, "summarize", "-m", "fake-embed", "--one-line")
    assert code == 0 and len(out.split()) <= 30


def test_summarize_many_inputs_reports_and_skips_bad_ones(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                                          tmp_path: Path) -> None:
    mbox, _ = make_mailboxes(tmp_path)
    binary = tmp_path / "junk.txt"
    binary.write_bytes(bytes(range(256)) * 20)
    code, out, err = plait(capsys, "summarize", str(mbox), str(binary), "-m", "fake-embed", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["title"] for r in rows] == ["Budget für 2024", "Lunch"]
    assert code == 4 and "junk.txt looks like binary" in err and "1 of 3 inputs" in err


def test_summarize_folder(fake_models: Runtime, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    docs = tmp_path / "docs"  # not tmp_path itself: plait's home is there too
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text(ARTICLE)
    (docs / "sub" / "b.md").write_text(ARTICLE)
    (docs / "ignored.xyz").write_text("x")
    code, out, _ = plait(capsys, "summarize", str(docs), "-m", "fake-embed", "--json")
    assert code == 0 and len(out.splitlines()) == 2


@pytest.mark.parametrize("case", ["empty", "binary", "unknown", "huge", "missing"])
def test_bad_input_is_one_clear_line(case: str, fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    path = tmp_path / {"unknown": "data.xyz"}.get(case, "input.txt")
    if case == "empty":
        path.write_text("")
    elif case == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    elif case == "unknown":
        path.write_text("hello")
    elif case == "huge":
        path.write_text("All work and no play makes a dull day. " * 260_000)  # ~10 MB
    for command in (["summarize", "-m", "fake-embed"], ["sentiment"], ["extract"]):
        code, out, err = plait(capsys, *command, str(path))
        assert code == 4, (command, err)
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err
        expected = {"empty": "empty", "binary": "binary", "unknown": "cannot read '.xyz'", "huge": "too long",
                    "missing": "does not exist"}[case]
        assert expected in err


def test_sentiment_cli(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("vaderSentiment")
    code, out, _ = plait(capsys, "sentiment", "--method", "vader", "-s", "-t",
                         "Great job, thank you! The server crashed twice.")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("positive") and len(lines) == 3
    code, out, _ = plait(capsys, "sentiment", "--method", "vader", "--json", "-t", "Awful.")
    data = json.loads(out)
    assert data["label"] == "negative" and data["sentences"][0]["score"] < 0


def test_extract_schema_cli_errors(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                   tmp_path: Path) -> None:
    code, _, err = plait(capsys, "extract", "-t", "hi", "--schema", "{not json", "-m", "fake-chat")
    assert code == 4 and "not valid JSON" in err
    code, _, err = plait(capsys, "extract", "-t", "hi", "--schema", str(tmp_path / "none.json"))
    assert code == 4 and "does not exist" in err
    code, _, err = plait(capsys, "extract", "-t", "hi", "--kind", "colours")
    assert code == 2 and "colours" in err
    # The fake model echoes the prompt, which is not JSON: reported as the model's failure, not a crash.
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}))
    code, _, err = plait(capsys, "extract", "-t", "hi", "--schema", str(schema), "-m", "fake-chat")
    assert code == 6 and "no valid JSON" in err
