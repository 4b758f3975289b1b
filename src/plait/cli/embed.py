"""`plait embed`: embeddings as JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import read_input, state
from plait.errors import InputError
from plait.tasks.embed import embed as embed_texts
from plait.tasks.embed import embedder


def register(app: typer.Typer) -> None:
    app.command()(embed)


def embed(
    ctx: typer.Context,
    texts: Annotated[list[str] | None,
                     typer.Argument(help="texts to embed; none reads lines of standard input")] = None,
    file: Annotated[Path | None,
                    typer.Option("--file", "-f", help="embed each non-empty line of this file")] = None,
    model: Annotated[str | None,
                     typer.Option("--model", "-m", help="catalog name (default: embed_model setting)")] = None,
    query: Annotated[bool,
                     typer.Option("--query", help="embed as search queries (matters for E5-style models)")] = False,
    decimals: Annotated[int, typer.Option(help="round vector components (smaller output)")] = 6,
) -> None:
    """Embed texts; prints one JSON object per text: {"index", "text", "embedding"}."""
    if file is not None or not texts:
        lines = [line.strip() for line in read_input(None if not texts else "-", file).splitlines()]
        items = [line for line in lines if line]
    else:
        items = list(texts)
    if not items:
        raise InputError("nothing to embed: the input has no non-empty lines")
    rt = state(ctx).runtime()
    model_obj = embedder(model, rt)
    show_progress = len(items) > 256 and sys.stderr.isatty()
    if show_progress:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task(f"embedding with {model_obj.spec.name}", total=len(items))
            vectors = embed_texts(items, model=model_obj, kind="query" if query else "document",
                                  progress=lambda n: bar.advance(task, n))
    else:
        vectors = embed_texts(items, model=model_obj, kind="query" if query else "document")
    out = sys.stdout
    for i, (text, vector) in enumerate(zip(items, vectors, strict=True)):
        out.write(json.dumps({"index": i, "text": text,
                              "embedding": [round(float(x), decimals) for x in vector]}, ensure_ascii=False))
        out.write("\n")
