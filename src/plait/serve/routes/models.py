"""The catalog, tuning runs and compression reports over HTTP (the web page's Models view).

``/v1/models`` is OpenAI's list; ``/v1/catalog`` is plait's own, with where each model's files are, their
size and whether they are here. Adding a model (a GGUF path or an OpenAI-compatible endpoint) needs the
``admin`` scope: it names the owner's own files and servers. A run's plots and a report's files are read
only from inside that run's or report's folder, by names plait wrote.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from plait.models.catalog import describe, spec_from_source
from plait.serve.deps import AdminKey, ChatKey, Ctx
from plait.serve.errors import ApiError

router = APIRouter(tags=["Models"])
# Files a run or a report folder holds that the page shows: plots, charts, the report itself.
_FILE = re.compile(r"^[A-Za-z0-9_-]+\.(png|json|html)$")
_TYPES = {".png": "image/png", ".json": "application/json", ".html": "text/html; charset=utf-8"}


class NewModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    source: str = Field(min_length=1, max_length=2000, description="a .gguf/.onnx file or folder on this machine, a "
                                                                   "hub name, or an OpenAI-compatible URL")
    capabilities: list[str] | None = Field(None, description="chat, complete or embed (default: inferred)")
    remote_model: str | None = Field(None, max_length=200, description="the model's name on the remote server")
    api_key_env: str | None = Field(None, max_length=100, pattern=r"^[A-Z_][A-Z0-9_]*$",
                                    description="the environment variable holding the remote server's key")
    description: str = Field("", max_length=500)
    replace: bool = False


@router.get("/v1/catalog")
async def catalog(ctx: Ctx, key: ChatKey) -> list[dict[str, Any]]:
    rt = ctx.runtime
    loaded = set(rt.pool.loaded())
    specs = await ctx.run(rt.catalog.all)
    return [{**describe(s, rt.settings.models_dir), "loaded": s.name in loaded} for s in specs]


@router.post("/v1/catalog", status_code=201)
async def add_model(body: NewModel, ctx: Ctx, key: AdminKey) -> dict[str, Any]:
    options: dict[str, object] = {k: v for k, v in (("remote_model", body.remote_model),
                                                     ("api_key_env", body.api_key_env)) if v}
    capabilities = tuple(body.capabilities) if body.capabilities else None
    # Off the event loop: the source is looked up on disk (a slow or network file system).
    spec = await ctx.run(lambda: spec_from_source(body.name, body.source, capabilities=capabilities, options=options,
                                                  description=body.description))
    await ctx.run(lambda: ctx.runtime.catalog.add(spec, replace=body.replace))
    return describe(spec, ctx.settings.models_dir)


@router.get("/v1/runs")
async def runs(ctx: Ctx, key: ChatKey, limit: int = 50) -> list[dict[str, Any]]:
    from plait.adapt.tracking import list_runs

    return [r.as_dict() for r in await ctx.run(lambda: list_runs(ctx.runtime.store, limit=max(1, min(limit, 500))))]


@router.get("/v1/runs/{run_id}")
async def run(run_id: str, ctx: Ctx, key: ChatKey) -> dict[str, Any]:
    from plait.adapt.tracking import epoch_metrics, get_run

    record = await ctx.run(get_run, ctx.runtime.store, run_id)
    folder = Path(record.run_dir)
    files = sorted(p.name for p in folder.iterdir() if _FILE.match(p.name)) if folder.is_dir() else []
    return {**record.as_dict(), "epochs": await ctx.run(epoch_metrics, ctx.runtime.store, record.id), "files": files}


@router.get("/v1/runs/{run_id}/files/{name}")
async def run_file(run_id: str, name: str, ctx: Ctx, key: ChatKey) -> Response:
    from plait.adapt.tracking import get_run

    record = await ctx.run(get_run, ctx.runtime.store, run_id)
    return _file(Path(record.run_dir), name)


@router.get("/v1/reports")
async def reports(ctx: Ctx, key: ChatKey) -> list[dict[str, Any]]:
    """Compression reports, newest first, each with its summary rows."""
    from plait.compress.report import saved_reports

    def listed() -> list[dict[str, Any]]:  # reads the disk: in a worker thread, off the event loop
        return [{"name": folder.name, "files": sorted(p.name for p in folder.iterdir() if _FILE.match(p.name)),
                 "report": data} for folder, data in saved_reports(ctx.settings)]

    return await ctx.run(listed)


@router.get("/v1/reports/{name}/{file}")
async def report_file(name: str, file: str, ctx: Ctx, key: ChatKey) -> Response:
    if not re.fullmatch(r"[A-Za-z0-9@._-]+", name) or name.startswith("."):
        raise ApiError(404, f"no report '{name}'", code="not_found")
    from plait.compress.report import reports_home

    return _file(reports_home(ctx.settings) / name, file)


def _file(folder: Path, name: str) -> Response:
    path = folder / name
    if not _FILE.match(name) or not path.is_file():
        raise ApiError(404, f"no file '{name}' there", code="not_found")
    # A report's HTML is plait's own, but shown sandboxed like anything else that names the person's data.
    return FileResponse(path, media_type=_TYPES[path.suffix], headers={
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff"})
