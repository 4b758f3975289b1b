"""The CLI in-process, with fake models: output formats, input sources and error handling."""

import json
from pathlib import Path

import pytest

from plait.runtime import Runtime
from tests.cli import plait


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plait(capsys, "--help")
    assert code == 0
    for cmd in ("chat", "generate", "embed", "models", "config"):
        assert cmd in out


def test_generate_streams_and_json(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plait(capsys, "generate", "good morning", "-m", "fake-chat")
    assert code == 0 and out.strip() == "echo: good morning"
    code, out, _ = plait(capsys, "generate", "good morning", "-m", "fake-chat", "--json", "--max-tokens", "2")
    data = json.loads(out)
    assert data["text"].strip() == "echo: good" and data["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 2


def test_generate_reads_non_utf8_stdin(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    stdin = io.TextIOWrapper(io.BytesIO("Café crème".encode("cp1252")))
    monkeypatch.setattr(sys, "stdin", stdin)
    code, out, _ = plait(capsys, "generate", "-", "-m", "fake-chat")
    assert code == 0 and "Caf" in out


def test_chat_is_multi_turn_from_stdin(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.StringIO("first\n/reset\nsecond\n/exit\nnever\n"))
    code, out, _ = plait(capsys, "chat", "-m", "fake-chat")
    assert code == 0
    assert "echo: first" in out and "echo: second" in out and "never" not in out


def test_embed_jsonl_from_file(fake_models: Runtime, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "lines.txt"
    src.write_text("alpha beta\n\ngamma\n")
    code, out, _ = plait(capsys, "embed", "--file", str(src), "-m", "fake-embed")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["text"] for r in rows] == ["alpha beta", "gamma"]
    assert len(rows[0]["embedding"]) == 64


def test_errors_are_one_line_with_nonzero_exit(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    code, out, err = plait(capsys, "generate", "hi", "-m", "nosuch")
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "unknown model 'nosuch'" in err and "smollm2" in err
    assert "Traceback" not in err
    code, _, err = plait(capsys, "embed", "hi", "-m", "fake-chat")
    assert code != 0 and "cannot embed" in err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    code, _, err = plait(capsys, "embed", "--file", str(empty), "-m", "fake-embed")
    assert code != 0 and "nothing to embed" in err


def test_debug_shows_traceback(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plait(capsys, "--debug", "generate", "hi", "-m", "nosuch")
    assert code != 0 and "Traceback" in err


def test_models_and_config_commands(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    code, out, _ = plait(capsys, "models", "list", "--json")
    names = [json.loads(line)["name"] for line in out.splitlines()]
    assert code == 0 and "smollm2" in names and "fake-chat" in names
    code, out, _ = plait(capsys, "models", "info", "smollm2")
    assert code == 0 and "llamacpp" in out
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 16)
    code, _, err = plait(capsys, "models", "add", "mine", str(gguf), "--lora", str(tmp_path / "none.gguf"))
    assert code == 6 and "none.gguf" in err and "LoRA adapter" in err and err.count("\n") == 1
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"GGUF" + b"\0" * 16)
    assert plait(capsys, "models", "add", "mine", str(gguf), "--lora", str(adapter))[0] == 0
    code, out, _ = plait(capsys, "models", "info", "mine")
    assert code == 0 and "adapter.gguf" in out
    assert plait(capsys, "models", "remove", "mine")[0] == 0
    code, _, err = plait(capsys, "models", "remove", "mine")
    assert code != 0 and "unknown model" in err
    assert plait(capsys, "config", "set", "max_tokens", "77")[0] == 0
    code, out, _ = plait(capsys, "config", "show", "--json")
    assert json.loads(out)["max_tokens"] == {"value": 77, "source": "config file"}
