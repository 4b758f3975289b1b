"""Security routes (admin scope): the anomaly alerts and the audit log, for the web page and scripts.

- ``GET /v1/security/alerts``  alerts raised by anomaly detection, newest first (``?since=`` Unix seconds)
- ``GET /v1/security/audit``   audit log rows, newest first (``?key=``, ``?kind=``, ``?since=``, ``?limit=``)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from plait.security.audit import read
from plait.serve.deps import AdminKey, Ctx
from plait.serve.openai_schema import ERRORS

router = APIRouter(tags=["Security"], responses={k: v for k, v in ERRORS.items() if k in (400, 401, 403, 429)})


@router.get("/v1/security/alerts")
async def alerts(ctx: Ctx, key: AdminKey, since: float | None = None,
                 limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
    """Alerts of the anomaly detector: each names the key, what it did and the threshold it crossed."""
    if ctx.audit is not None:
        await ctx.run(ctx.audit.flush)
    rows = await ctx.run(lambda: read(ctx.runtime.store, since=since, kinds=("alert",), limit=limit))
    return {"alerts": [r.detail | {"id": r.id} for r in rows]}


@router.get("/v1/security/audit")
async def audit_log(ctx: Ctx, key: AdminKey, since: float | None = None, of: str | None = Query(
        None, alias="key", description="a key's id or name"), kind: str | None = None,
                    limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """The audit log: who (which key) did what, when, from where, with how many bytes."""
    if ctx.audit is not None:
        await ctx.run(ctx.audit.flush)
    kinds = tuple(kind.split(",")) if kind else ()
    rows = await ctx.run(lambda: read(ctx.runtime.store, since=since, key=of, kinds=kinds, limit=limit))
    return {"events": [r.as_dict() for r in rows]}
