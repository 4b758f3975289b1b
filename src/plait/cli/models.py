"""`plait models list|info|add|remove|check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import state
from plait.errors import ModelFileError
from plait.models.catalog import describe, spec_from_source

app = typer.Typer(help="The models plait knows: built-ins and your own.", no_args_is_help=True)


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
            print(json.dumps(describe(spec, models_dir)))
        return
    table = Table(show_edge=False)
    for col in ("name", "backend", "can", "size", "status", "description"):
        table.add_column(col)
    for spec in specs:
        info = describe(spec, models_dir)
        size = "-" if info["size_bytes"] is None else f"{info['size_bytes'] / 1e6:,.0f} MB"
        table.add_row(spec.name, spec.backend, ",".join(spec.capabilities), size, info["status"], spec.description)
    Console().print(table)


@app.command()
def info(ctx: typer.Context, name: str,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Everything plait knows about one model: source, files, options, metrics and how it was made."""
    rt = state(ctx).runtime()
    data = {**describe(rt.catalog.get(name), rt.settings.models_dir), "loaded": name in rt.pool.loaded()}
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
    lora: Annotated[list[Path] | None, typer.Option(help="a LoRA adapter (GGUF) applied to a GGUF model "
                                                         "(repeatable)")] = None,
    description: Annotated[str, typer.Option(help="a note shown in `models list`")] = "",
    replace: Annotated[bool, typer.Option("--replace", help="overwrite an entry of the same name")] = False,
    redact: Annotated[bool | None, typer.Option("--redact/--no-redact", help="for a remote server: replace personal "
                                                "data before requests leave (default: the redact_remote setting)")]
    = None,
    fallback: Annotated[str | None, typer.Option(help="for a remote server: a model that answers while it is "
                                                 "down")] = None,
    timeout: Annotated[float | None, typer.Option(min=0.1, help="for a remote server: seconds of silence before it "
                                                  "counts as down (default 120)")] = None,
) -> None:
    """Add your own model to the catalog."""
    options: dict[str, object] = {} if redact is None else {"redact": redact}
    for key, value in (("remote_model", remote_model), ("api_key_env", api_key_env), ("tokenizer", tokenizer),
                       ("fallback", fallback), ("timeout", timeout)):
        if value:
            options[key] = value
    if fallback:
        state(ctx).runtime().catalog.get(fallback)  # an unknown fallback is said now, not when the server is down
    if lora:
        options["lora"] = [str(p.expanduser().resolve()) for p in lora]
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
          name: Annotated[str | None, typer.Argument(help="one model only; for a model on a remote server, whether "
                                                          "the server is up and serves it")] = None,
          as_json: Annotated[bool, typer.Option("--json", help="one JSON object per model")] = False) -> None:
    """Check that every model's files are where its entry says (after moving or deleting files); with NAME, that
    model only, and a remote model's server (its /models route)."""
    from plait.doctor import check_models

    runtime = state(ctx).runtime()
    spec = runtime.catalog.get(name) if name is not None else None
    if spec is not None and spec.is_remote:
        return _check_server(ctx, spec.name, as_json)
    checks = [c for c in check_models(runtime) if spec is None or c.name == spec.name]
    for c in checks:
        if as_json:
            print(json.dumps(c.as_dict()))
        else:
            print(f"{'ok' if c.status == 'ok' else 'missing':>7}  {c.name}: {c.detail}"
                  + (f"\n         → {c.fix}" if c.fix else ""))
    if any(c.status == "fail" for c in checks):
        raise typer.Exit(ModelFileError.exit_code)


def _check_server(ctx: typer.Context, name: str, as_json: bool) -> None:
    from plait.models.base import Model
    from plait.models.remote import RemoteModel

    model = state(ctx).runtime().model(name, Model)
    remote = getattr(model, "primary", model)  # a model with a fallback: its server
    assert isinstance(remote, RemoteModel)  # the caller checked that the model is remote
    health = remote.health()
    if as_json:
        print(json.dumps({"name": name, "ok": health.ok, "detail": health.detail, "seconds": health.seconds,
                          "models": list(health.models)}))
    else:
        print(f"{name}: {health.detail} ({health.seconds * 1000:.0f} ms)"
              + (f"; serves {', '.join(health.models)}" if health.models else ""))
    if not health.ok:
        raise typer.Exit(6)
