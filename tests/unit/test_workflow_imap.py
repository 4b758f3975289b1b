"""The IMAP trigger's password: read before a connection is opened, from a file beside the workflow.
(A real server is in tests/integration/test_workflow_imap.py.)"""

from __future__ import annotations

import imaplib
import threading
from pathlib import Path
from typing import Any

import pytest

from plait.workflows.clock import ManualClock
from plait.workflows.errors import TriggerError
from plait.workflows.triggers import TriggerEnv
from plait.workflows.triggers.imap import ImapOptions, ImapTrigger


class _Server:
    """Just enough of imaplib.IMAP4 for a scan that finds nothing; records connections and logins."""

    opened: list[_Server] = []
    error, abort = imaplib.IMAP4.error, imaplib.IMAP4.abort  # the trigger catches these through the class

    def __init__(self, host: str, port: int, timeout: float | None = None) -> None:
        self.logins: list[tuple[str, str]] = []
        self.logged_out = False
        _Server.opened.append(self)

    def login(self, user: str, password: str) -> tuple[str, list[bytes]]:
        self.logins.append((user, password))
        return "OK", [b"logged in"]

    def select(self, mailbox: str, readonly: bool = False) -> tuple[str, list[bytes]]:
        return "OK", [b"0"]

    def response(self, code: str) -> tuple[str, list[bytes]]:
        return code, [b"7"]

    def uid(self, command: str, *args: Any) -> tuple[str, list[bytes]]:
        return "OK", [b""]

    def logout(self) -> None:
        self.logged_out = True


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> type[_Server]:
    _Server.opened = []
    monkeypatch.setattr(imaplib, "IMAP4", _Server)
    return _Server


def _trigger(base_dir: Path, **options: Any) -> ImapTrigger:
    env = TriggerEnv("mail", base_dir, ManualClock(0), lambda keys: set(), threading.Event())
    return ImapTrigger(ImapOptions(host="mail.example.org", ssl=False, username="me", **options), env)


def test_a_missing_password_opens_no_connection(server: type[_Server], tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLAIT_TEST_IMAP_PASSWORD", raising=False)
    trigger = _trigger(tmp_path, password_env="PLAIT_TEST_IMAP_PASSWORD")
    for _ in range(3):  # one poll after another
        with pytest.raises(TriggerError, match="PLAIT_TEST_IMAP_PASSWORD is not set"):
            list(trigger.scan({}))
    assert server.opened == []


def test_the_password_file_is_found_beside_the_workflow(server: type[_Server], tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "imap-password").write_text("s3cret\n")
    monkeypatch.chdir(tmp_path)  # a relative path is the workflow's, not the current directory's
    trigger = _trigger(tmp_path / "workflows", password_file="imap-password")
    assert list(trigger.scan({})) == []
    assert server.opened[0].logins == [("me", "s3cret")]
    trigger.close()
    assert server.opened[0].logged_out
