"""`plait config show|set|path`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from plait.cli.common import state
from plait.settings import resolve_settings, write_setting

app = typer.Typer(help="Settings: argument > config file > PLAIT_* environment > default.",
                  no_args_is_help=True)


@app.command()
def show(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the effective settings and where each came from."""
    resolved = resolve_settings(home=state(ctx).home)
    values = resolved.settings.model_dump(mode="json")
    if as_json:
        print(json.dumps({k: {"value": v, "source": resolved.sources[k]} for k, v in values.items()}, indent=2))
        return
    width = max(map(len, values))
    for key, value in values.items():
        print(f"{key:<{width}}  {value!s:<40}  ({resolved.sources[key]})")


@app.command("set")
def set_(ctx: typer.Context, key: str, value: str) -> None:
    """Write a setting to the config file."""
    home = resolve_settings(home=state(ctx).home).settings.home
    write_setting(home, key, value)
    print(f"{key} = {value}  (in {home / 'config.toml'})")


@app.command()
def path(ctx: typer.Context) -> None:
    """Print the config file's path."""
    print(resolve_settings(home=state(ctx).home).settings.config_path)
