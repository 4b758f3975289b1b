"""`plait see`: the most likely classes of images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.batch import expand_files, print_results, progress
from plait.cli.common import state


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
    from plait.tasks.see import SeeResult, classifier, see_many

    files = expand_files(images, IMAGE_SUFFIXES, what="image")
    m = classifier(model, state(ctx).runtime())
    with progress(len(files), f"classifying with {m.spec.name}") as advance:
        results = see_many(files, k=k, model=m, errors="report", progress=advance)

    def show(result: SeeResult) -> None:
        if as_json:
            print(json.dumps({"source": result.source, "model": m.spec.name,
                              "labels": [{"label": x.label, "score": x.score, "index": x.index}
                                         for x in result.labels]}, ensure_ascii=False))
        elif len(results) == 1:
            for x in result.labels:
                print(f"{x.score:.3f}  {x.label}")
        else:
            print(f"{result.source}: " + ", ".join(f"{x.label} ({x.score:.2f})" for x in result.labels))

    print_results(results, show, as_json=as_json, what="images")
