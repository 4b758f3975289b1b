"""`plait keys create|list|revoke`: the server's API keys."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from plait.cli.common import state
from plait.serve.auth import SCOPES, KeyStore

app = typer.Typer(help="API keys for the server (`plait serve`): create, list, revoke.", no_args_is_help=True)


def _keys(ctx: typer.Context) -> KeyStore:
    return KeyStore(state(ctx).runtime().store)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="what the key is for, e.g. 'editor' or 'n8n'")],
    scopes: Annotated[str, typer.Option(help=f"comma-separated, from: {', '.join(SCOPES)}")] = "chat,tasks,index",
    rate_limit: Annotated[int | None, typer.Option(
        help="requests per minute (0: no limit; default: the rate_limit_per_minute setting)")] = None,
) -> None:
    """Create a key and print its secret (shown this once; plait keeps only a hash)."""
    keys = _keys(ctx)
    limit = state(ctx).runtime().settings.rate_limit_per_minute if rate_limit is None else rate_limit
    new = keys.create(name, scopes, rate_limit=limit)
    print(new.secret)
    limit_text = f"{limit}/min" if limit else "no rate limit"
    print(f"created key {new.key.id} '{new.key.name}' with scopes {' '.join(new.key.scopes)}, {limit_text}; "
          "store the secret now, it cannot be shown again", file=sys.stderr)


@app.command("list")
def list_(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="include revoked keys")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per key")] = False,
) -> None:
    """List keys: id, name, scopes, the start of the secret, when created and last used."""
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    keys = _keys(ctx).list(include_revoked=all_)
    if as_json:
        for key in keys:
            print(json.dumps(asdict(key)))
        return
    if not keys:
        print("no API keys yet; `plait serve` creates a local one, `plait keys create NAME` makes more",
              file=sys.stderr)
        return
    table = Table(show_edge=False)
    for column in ("id", "name", "scopes", "starts with", "rate limit", "created", "last used", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(k.id, k.name, " ".join(k.scopes), k.prefix + "…",
                      f"{k.rate_limit}/min" if k.rate_limit else "-", k.created_at, k.last_used_at or "-",
                      k.revoked_at or "")
    Console().print(table)


@app.command()
def revoke(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="the key's id, or a name (revokes every active key with it)")],
) -> None:
    """Revoke a key: the server refuses it from the next request on."""
    for k in _keys(ctx).revoke(key):
        print(f"revoked key {k.id} '{k.name}'", file=sys.stderr)
