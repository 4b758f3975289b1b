"""`plait see`: the most likely classes of images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from plait.cli.batch import expand_files, print_results, progress
from plait.cli.tasks import print_json, run_files

if TYPE_CHECKING:
    from plait.tasks.registry import Task
    from plait.tasks.see import SeeResult


def register(app: typer.Typer) -> None:
    app.command()(see)


def see(
    ctx: typer.Context,
    images: Annotated[list[Path], typer.Argument(help="image files, or folders of images (searched recursively)",
                                                 show_default=False)],
    k: Annotated[int, typer.Option("-k", "--top", help="how many classes to show per image")] = 5,
    model: Annotated[str | None,
                     typer.Option("--model", "-m", help="catalog name (default: efficientnet-lite0)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per image")] = False,
) -> None:
    """Classify images (ImageNet's 1,000 classes by default) and print the top classes with probabilities."""
    from plait.readers.image import IMAGE_SUFFIXES

    files = expand_files(images, IMAGE_SUFFIXES, what="image")
    with progress(len(files), "classifying images") as advance:
        done = list(run_files(ctx, "see", files, {"k": k, "model": model}, progress=advance))
    single = len(done) == 1

    def show(task: Task, result: SeeResult) -> None:
        if as_json:
            print_json(task, result)
        elif single:
            for x in result.labels:
                print(f"{x.score:.3f}  {x.label}")
        else:
            print(f"{result.source}: " + ", ".join(f"{x.label} ({x.score:.2f})" for x in result.labels))

    print_results(done, show, as_json=as_json, what="images")
