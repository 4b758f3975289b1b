"""`plait hear`: transcribe speech in audio files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.batch import expand_files, print_results, progress
from plait.cli.common import state


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
    from plait.tasks.hear import HearResult, hear_many, recognizer

    files = expand_files(audio, AUDIO_SUFFIXES, what="audio")
    m = recognizer(model, state(ctx).runtime())
    with progress(len(files), f"transcribing with {m.spec.name}") as advance:
        results = hear_many(files, model=m, errors="report", progress=advance)

    def show(result: HearResult) -> None:
        if as_json:
            print(json.dumps({"source": result.source, "model": m.spec.name, "text": result.text,
                              "duration": round(result.duration, 3),
                              "words": [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.confidence}
                                        for w in result.words]}, ensure_ascii=False))
        elif len(results) == 1:
            print(result.text)
        else:
            print(f"{result.source}: {result.text}")

    print_results(results, show, as_json=as_json, what="audio")
