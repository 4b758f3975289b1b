"""What every command shares: the runtime of this invocation, input reading and output helpers."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from plait.readers.text import decode_bytes, read_text
from plait.runtime import Runtime
from plait.settings import load_settings


@dataclass
class State:
    home: Path | None = None
    debug: bool = False
    _runtime: Runtime | None = field(default=None, repr=False)

    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime(load_settings(home=self.home))
        return self._runtime


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


def read_input(text: str | None, file: Path | None = None) -> str:
    """Text from an argument, a file, or standard input (``-`` or nothing given on a pipe)."""
    if file is not None:
        return read_text(file)
    if text is not None and text != "-":
        return text
    if sys.stdin.isatty() and text is None:
        raise typer.BadParameter("give the text as an argument, with --file, or on standard input")
    return decode_bytes(sys.stdin.buffer.read(), name="standard input")


def write(text: str) -> None:
    """Write model output as it is (no markup interpretation) and show it at once."""
    sys.stdout.write(text)
    sys.stdout.flush()


def err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
