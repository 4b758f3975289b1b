"""Running the plait CLI in-process, as a user would from a shell, for tests of commands."""

from __future__ import annotations

import pytest

from plait.cli.main import run


def plait(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``plait ARGS…``: the exit code, stdout and stderr (captured output so far is consumed)."""
    try:
        run(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
