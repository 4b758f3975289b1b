"""Background jobs the server runs for a request (indexing a folder): their progress and results."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from plait.serve.deps import AdminKey, Ctx
from plait.serve.errors import ApiError

router = APIRouter(tags=["Jobs"])


@router.get("/v1/jobs")
async def list_jobs(ctx: Ctx, key: AdminKey, kind: str | None = None) -> list[dict[str, Any]]:
    return [job.as_dict() for job in ctx.jobs.list(kind)]


@router.get("/v1/jobs/{job_id}")
async def get_job(job_id: str, ctx: Ctx, key: AdminKey) -> dict[str, Any]:
    job = ctx.jobs.get(job_id)
    if job is None:
        raise ApiError(404, f"no job {job_id} (jobs are kept while the server runs)", code="not_found")
    return job.as_dict()
