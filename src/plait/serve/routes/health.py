"""/health (no key needed: says only whether the server is up, and plait's version) and Prometheus
/metrics (admin scope). Which models are loaded is for key holders: /api/ps."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel

from plait import __version__
from plait.serve.deps import AdminKey, Ctx
from plait.serve.openai_schema import ERRORS

router = APIRouter(tags=["Operations"])


class Health(BaseModel):
    status: str
    version: str


@router.get("/health", response_model=Health)
async def health(ctx: Ctx) -> Health:
    return Health(status="stopping" if ctx.closing else "ok", version=__version__)


@router.get("/metrics", response_class=Response, responses={
    200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
    **{k: v for k, v in ERRORS.items() if k in (401, 403, 429)}})
async def metrics(ctx: Ctx, key: AdminKey) -> Response:
    body, content_type = ctx.metrics.render()
    return Response(body, media_type=content_type)
