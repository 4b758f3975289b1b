"""The personal index over HTTP: what it holds, adding folders (a background job with progress), removing a
collection, and reading back a passage or a document (what a citation opens).

Adding and removing need the ``admin`` scope: the paths are the owner's choice of their own folders, read
by the server. Reading needs ``index``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from plait.index.core import open_index
from plait.index.passages import document_text, passage
from plait.serve.deps import AdminKey, Ctx, IndexKey
from plait.serve.errors import ApiError

# A database row's id: SQLite's integers stop at 2**63 - 1.
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]

router = APIRouter(tags=["Index"])


class AddRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1, max_length=100, description="folders, files or mailboxes on this machine")
    collection: str = Field("default", min_length=1, max_length=100)


@router.get("/v1/index")
async def index_status(ctx: Ctx, key: IndexKey, check: bool = False) -> dict[str, Any]:
    """Collections with their counts, skipped and partly read files with the reasons."""
    status = await ctx.run(lambda: open_index(ctx.runtime).status(check=check))
    return asdict(status)


@router.post("/v1/index/add", status_code=202)
async def add(body: AddRequest, ctx: Ctx, key: AdminKey) -> dict[str, Any]:
    """Index folders in the background; poll ``GET /v1/jobs/{id}`` for progress and the report."""
    from plait.index.records import check_collection_name

    check_collection_name(body.collection)  # refused now, not later in the job
    paths = [Path(p).expanduser() for p in body.paths]
    missing = [str(p)[:200] for p in paths if not _exists(p)]
    if missing:
        raise ApiError(400, f"not found on this machine: {', '.join(missing)}", param="paths")
    index = open_index(ctx.runtime)

    def work(progress: Any) -> dict[str, Any]:
        report = index.add(paths, collection=body.collection, progress=lambda p: progress(asdict(p)))
        return asdict(report)

    job = ctx.jobs.start("index", f"indexing {', '.join(body.paths)} into {body.collection}", work)
    return job.as_dict()


@router.delete("/v1/index/collections/{name}")
async def remove_collection(name: str, ctx: Ctx, key: AdminKey) -> dict[str, Any]:
    report = await ctx.run(lambda: open_index(ctx.runtime).remove(collection=name))
    return asdict(report)


@router.get("/v1/index/passages/{chunk_id}")
async def get_passage(chunk_id: RowId, ctx: Ctx, key: IndexKey) -> dict[str, Any]:
    return asdict(await ctx.run(passage, ctx.runtime.store, chunk_id))


@router.get("/v1/index/documents/{document_id}")
async def get_document(document_id: RowId, ctx: Ctx, key: IndexKey) -> dict[str, Any]:
    return asdict(await ctx.run(document_text, ctx.runtime.store, document_id))


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long, a NUL byte: no such file
        return False
