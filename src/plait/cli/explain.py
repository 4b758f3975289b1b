"""`plait explain MODEL TEXT`: which words drove a classifier's decision."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import read_input
from plait.cli.tasks import print_json, run_task


def register(app: typer.Typer) -> None:
    app.command(no_args_is_help=True)(explain)


def explain(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="a classifier from the catalog (e.g. one made by `plait tune`)")],
    text: Annotated[str | None, typer.Argument(help="the text; '-' or nothing reads standard input")] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="read the text from a file")] = None,
    label: Annotated[str | None, typer.Option(help="explain this label (default: the predicted one)")] = None,
    method: Annotated[str, typer.Option(help="auto, integrated-gradients (PyTorch models) or occlusion "
                                        "(any model)")] = "auto",
    steps: Annotated[int, typer.Option(help="integrated-gradients steps")] = 32,
    html: Annotated[Path | None, typer.Option("--html", help="also write a coloured HTML page here")] = None,
    top: Annotated[int, typer.Option(help="list this many of the strongest words")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="print the attributions as JSON")] = False,
) -> None:
    """Colour each word by how much it pushed the decision (green: towards the label, red: away)."""
    from plait.errors import InputError
    from plait.tasks.explain import render_html, render_terminal

    if method not in ("auto", "integrated-gradients", "occlusion"):
        raise InputError("--method must be auto, integrated-gradients or occlusion")
    task, result = run_task(ctx, "explain", {"model": model, "text": read_input(text, file), "label": label,
                                             "method": method, "steps": steps})
    if html is not None:
        try:
            html.write_text(render_html(result), encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {html} ({exc.strerror or exc})") from exc
    if as_json:
        print_json(task, result)
        return
    from rich.console import Console

    console = Console(highlight=False)
    console.print(f"[bold]{result.label}[/bold] (p = {result.probability:.3f}) by {result.model}; "
                  f"{result.method}", markup=True)
    console.print(render_terminal(result))
    strongest = sorted(result.words, key=lambda w: -abs(w.score))[:top]
    if strongest:
        console.print("strongest: " + ", ".join(f"{w.text} {w.score:+.3f}" for w in strongest), markup=False)
    if html is not None:
        console.print(f"written {html}", markup=False)
