"""`plait speak`: text to speech, to a WAV file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import read_input
from plait.cli.tasks import print_json, run_task
from plait.errors import InputError


def register(app: typer.Typer) -> None:
    app.command()(speak)


def speak(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="what to say; '-' or nothing reads standard input")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="speak the text of this file")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="WAV file to write (default: standard output "
                                                               "when it is not a terminal)")] = None,
    voice: Annotated[str | None, typer.Option("--voice", "-v", help="eSpeak NG voice, e.g. en-us, en-gb, de, "
                                                                   "en-us+f3 (default en-us)")] = None,
    rate: Annotated[int | None, typer.Option(help="words per minute (80-450, default 175)")] = None,
    pitch: Annotated[int | None, typer.Option(help="0-99 (default 50)")] = None,
    list_voices: Annotated[bool, typer.Option("--list-voices", help="list the voices and exit")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print what was written as JSON")] = False,
) -> None:
    """Say a text with eSpeak NG and write the speech as a WAV file."""
    from plait.tasks.speak import voices

    if list_voices:
        for v in voices():
            print(f"{v.name:16} {v.gender:7} {v.description}")
        return
    if out is None and sys.stdout.isatty():
        raise InputError("give --out FILE.wav (or redirect standard output to a file)")
    task, speech = run_task(ctx, "speak", {"text": read_input(text, file), "voice": voice, "rate": rate,
                                           "pitch": pitch})
    if out is None:
        sys.stdout.buffer.write(speech.wav_bytes())
        sys.stdout.buffer.flush()
        return
    speech.save(out)
    if as_json:
        print_json(task, speech, out=str(out))
    else:
        print(f"wrote {out} ({speech.duration:.1f} s, voice {speech.voice})", file=sys.stderr)
