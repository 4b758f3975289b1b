"""`plait keys` and `plait serve` from the command line (in-process), and the serve extra's absence."""

import json
import socket
import sys
from pathlib import Path

import pytest

from plait.errors import MissingDependency
from plait.settings import load_settings
from tests.cli import plait


def test_keys_create_list_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = plait(capsys, "keys", "create", "editor", "--scopes", "chat,tasks", "--rate-limit", "30")
    secret = out.strip()
    assert code == 0 and secret.startswith("plait-") and "cannot be shown again" in err
    code, out, _ = plait(capsys, "keys", "list", "--json")
    keys = [json.loads(line) for line in out.splitlines()]
    assert [(k["name"], k["scopes"], k["rate_limit"]) for k in keys] == [("editor", ["chat", "tasks"], 30)]
    assert secret not in out  # only its first characters are ever shown
    code, out, _ = plait(capsys, "keys", "list")
    assert code == 0 and "editor" in out
    code, _, err = plait(capsys, "keys", "revoke", keys[0]["id"])
    assert code == 0 and "revoked" in err
    code, out, _ = plait(capsys, "keys", "list", "--json")
    assert out == ""


def test_keys_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plait(capsys, "keys", "create", "x", "--scopes", "root")
    assert code == 4 and "unknown scope" in err and "Traceback" not in err
    code, _, err = plait(capsys, "keys", "revoke", "nobody")
    assert code == 4 and "no active API key" in err


def test_serve_refuses_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = plait(capsys, "serve", "--port", str(port))
    assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err


def test_serve_refuses_an_open_network_bind_without_keys(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAIT_API_AUTH", "false")
    code, _, err = plait(capsys, "serve", "--host", "0.0.0.0")
    assert code == 2 and "api_auth off" in err


def test_server_needs_its_extra(monkeypatch: pytest.MonkeyPatch, plait_home: Path) -> None:
    from plait.serve import create_app

    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingDependency, match=r"plait\[serve\]"):
        create_app(load_settings(home=plait_home))


def test_default_bind_is_loopback_on_port_8434(plait_home: Path) -> None:
    s = load_settings(home=plait_home)
    assert (s.host, s.port, s.api_auth, s.cors_origins) == ("127.0.0.1", 8434, True, ())



def test_server_gives_llama_cpp_the_threads_it_is_told(plait_home: Path) -> None:
    from plait.models.llamacpp import LlamaServer
    from plait.serve import create_app

    for settings, expected in ((load_settings(home=plait_home, threads=4), 4),
                               (load_settings(home=plait_home, threads=4, generation_threads=3), 3)):
        app = create_app(settings)
        assert app.state.ctx.runtime.settings == settings
        assert LlamaServer.threads_for(app.state.ctx.runtime.settings) == expected
