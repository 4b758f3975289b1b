"""`plait models list|info|add|remove|check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import state
from plait.errors import ModelFileError
from plait.models.catalog import spec_from_source
from plait.models.spec import ModelSpec

app = typer.Typer(help="The models plait knows: built-ins and your own.", no_args_is_help=True)


def _where(spec: ModelSpec, models_dir: Path) -> str:
    if spec.is_remote:
        return spec.source
    if spec.is_hub:
        return f"hub: {spec.hub_name}"
    if spec.parent is not None and not spec.derived_path(models_dir).exists():
        return f"built from {spec.parent} on first use"
    try:
        return str(spec.local_path(models_dir))
    except ModelFileError as exc:
        return f"not installed: {exc}"


def _status(spec: ModelSpec, where: str) -> str:
    if where.startswith("not installed"):
        return "missing"
    if where.startswith("built from"):
        return "not built"
    return "remote" if spec.is_remote else "hub" if spec.is_hub else "ready"


def _size(spec: ModelSpec, models_dir: Path) -> str:
    size = spec.size_bytes(models_dir)
    return "-" if size is None else f"{size / 1e6:,.0f} MB"


@app.command("list")
def list_(ctx: typer.Context,
          as_json: Annotated[bool, typer.Option("--json", help="one JSON object per model")] = False) -> None:
    """List every model with what it can do and whether its files are here."""
    from rich.console import Console
    from rich.table import Table

    rt = state(ctx).runtime()
    specs, models_dir = rt.catalog.all(), rt.settings.models_dir
    if as_json:
        for spec in specs:
            where = _where(spec, models_dir)
            print(json.dumps({**spec.model_dump(), "status": _status(spec, where), "location": where,
                              "size_bytes": spec.size_bytes(models_dir)}))
        return
    table = Table(show_edge=False)
    for col in ("name", "backend", "can", "size", "status", "description"):
        table.add_column(col)
    for spec in specs:
        table.add_row(spec.name, spec.backend, ",".join(spec.capabilities), _size(spec, models_dir),
                      _status(spec, _where(spec, models_dir)), spec.description)
    Console().print(table)


@app.command()
def info(ctx: typer.Context, name: str,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Everything plait knows about one model: source, files, options, metrics and how it was made."""
    rt = state(ctx).runtime()
    spec, models_dir = rt.catalog.get(name), rt.settings.models_dir
    where = _where(spec, models_dir)
    data = {**spec.model_dump(), "status": _status(spec, where), "location": where,
            "size_bytes": spec.size_bytes(models_dir), "loaded": name in rt.pool.loaded()}
    if as_json:
        print(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        if value in ({}, (), "", None):
            continue
        print(f"{key:>13}: {json.dumps(value) if isinstance(value, (dict, list, tuple)) else value}")


@app.command()
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the name to use it by")],
    source: Annotated[str, typer.Argument(help="a .gguf/.onnx file, a model folder, a hub name (org/model) "
                                               "or an OpenAI-compatible URL (e.g. http://localhost:11434/v1)")],
    backend: Annotated[str | None, typer.Option(help="override the inferred backend")] = None,
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c",
                                                          help="chat, complete or embed (repeatable)")] = None,
    remote_model: Annotated[str | None, typer.Option(help="model name on the remote server")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="environment variable holding the API key")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="tokenizer.json for an ONNX model")] = None,
    description: Annotated[str, typer.Option(help="a note shown in `models list`")] = "",
    replace: Annotated[bool, typer.Option("--replace", help="overwrite an entry of the same name")] = False,
) -> None:
    """Add your own model to the catalog."""
    options: dict[str, object] = {}
    for key, value in (("remote_model", remote_model), ("api_key_env", api_key_env), ("tokenizer", tokenizer)):
        if value:
            options[key] = value
    spec = spec_from_source(name, source, capabilities=tuple(capability) if capability else None,
                            backend=backend, options=options, description=description)
    state(ctx).runtime().catalog.add(spec, replace=replace)
    print(f"added {spec.name} ({spec.backend}: {', '.join(spec.capabilities)})")


@app.command()
def remove(ctx: typer.Context, name: str) -> None:
    """Remove one of your models from the catalog (its files are left where they are)."""
    state(ctx).runtime().catalog.remove(name)
    print(f"removed {name}")


@app.command()
def check(ctx: typer.Context,
          as_json: Annotated[bool, typer.Option("--json", help="one JSON object per model")] = False) -> None:
    """Check that every model's files are where its entry says (after moving or deleting files)."""
    from plait.doctor import check_models

    checks = check_models(state(ctx).runtime())
    for c in checks:
        if as_json:
            print(json.dumps(c.as_dict()))
        else:
            print(f"{'ok' if c.status == 'ok' else 'missing':>7}  {c.name}: {c.detail}"
                  + (f"\n         → {c.fix}" if c.fix else ""))
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(ModelFileError.exit_code)
