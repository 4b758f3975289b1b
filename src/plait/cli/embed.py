"""`plait embed`: embeddings as JSON lines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.batch import progress
from plait.cli.common import read_input
from plait.cli.tasks import print_json, run_task
from plait.errors import InputError


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
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object: the model, its dimensions and "
                                                         "every vector unrounded")] = False,
) -> None:
    """Embed texts; prints one JSON line per text: {"index", "text", "embedding"} (or --json: one object)."""
    if file is not None or not texts:
        lines = [line.strip() for line in read_input(None if not texts else "-", file).splitlines()]
        items = [line for line in lines if line]
    else:
        items = list(texts)
    if not items:
        raise InputError("nothing to embed: the input has no non-empty lines")
    fields = {"texts": items, "model": model, "kind": "query" if query else "document"}
    with progress(len(items), "embedding", min_items=257) as advance:
        task, result = run_task(ctx, "embed", fields, progress=advance)
    if as_json:
        print_json(task, result)
        return
    out = sys.stdout
    for i, (text, vector) in enumerate(zip(items, result.embeddings, strict=True)):
        out.write(json.dumps({"index": i, "text": text, "embedding": [round(x, decimals) for x in vector]},
                             ensure_ascii=False))
        out.write("\n")
