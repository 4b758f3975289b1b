"""`plait hear`: transcribe speech in audio files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plait.cli.batch import expand_files, print_results, progress
from plait.cli.tasks import print_json, run_files

if TYPE_CHECKING:
    from plait.tasks.hear import HearResult
    from plait.tasks.registry import Task


def register(app: typer.Typer) -> None:
    app.command()(hear)


def hear(
    ctx: typer.Context,
    audio: Annotated[list[Path], typer.Argument(help="WAV files, or folders of them (searched recursively)",
                                                show_default=False)],
    model: Annotated[str | None, typer.Option("--model", "-m", help="catalog name (default: pocketsphinx-en)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per file, with word timings")] = False,
) -> None:
    """Speech to text: print what is said in each recording (any sample rate, mono or stereo)."""
    from plait.readers.audio import AUDIO_SUFFIXES

    files = expand_files(audio, AUDIO_SUFFIXES, what="audio")
    with progress(len(files), "transcribing") as advance:
        done = list(run_files(ctx, "hear", files, {"model": model}, progress=advance, chunk=1))
    single = len(done) == 1

    def show(task: Task, result: HearResult) -> None:
        if as_json:
            print_json(task, result)
        elif single:
            print(result.text)
        else:
            print(f"{result.source}: {result.text}")

    print_results(done, show, as_json=as_json, what="audio")
