"""Settings and API keys over HTTP (the web page's Settings view); all of it needs the ``admin`` scope.

A changed setting is written to ``$PLAIT_HOME/config.toml`` and takes effect when plait next starts (the
running server keeps the settings it started with). A new key's secret is in the answer once, never again.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from plait.errors import ConfigError
from plait.serve.auth import SCOPES
from plait.serve.deps import AdminKey, Ctx
from plait.serve.errors import ApiError
from plait.settings import resolve_settings, write_setting

router = APIRouter(tags=["Settings"])


class SettingChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(max_length=2000)


class NewKey(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["chat", "tasks", "index"],
                              description=f"any of {', '.join(SCOPES)}")
    rate_limit: int | None = Field(None, ge=0, le=1_000_000, description="requests per minute (none: no limit)")


@router.get("/v1/settings")
async def settings(ctx: Ctx, key: AdminKey) -> dict[str, Any]:
    """Every setting: the value in effect now, and where it comes from (flag, file, environment, default)."""
    resolved = resolve_settings(home=ctx.settings.home)
    now = ctx.settings.model_dump(mode="json")
    saved = resolved.settings.model_dump(mode="json")
    return {name: {"value": value, "source": resolved.sources.get(name, "default"),
                   "saved": saved.get(name)} for name, value in now.items()}


@router.put("/v1/settings/{name}")
async def change_setting(name: str, body: SettingChange, ctx: Ctx, key: AdminKey) -> dict[str, Any]:
    try:
        await ctx.run(write_setting, ctx.settings.home, name, body.value)
    except ConfigError as exc:  # a value the request gave: the request's problem
        raise ApiError(400, str(exc), param="value") from exc
    return {"name": name, "value": body.value, "applies": "when plait starts again"}


@router.get("/v1/keys")
async def list_keys(ctx: Ctx, key: AdminKey) -> list[dict[str, Any]]:
    return [asdict(k) for k in await ctx.run(lambda: ctx.keys.list(include_revoked=True))]


@router.post("/v1/keys", status_code=201)
async def create_key(body: NewKey, ctx: Ctx, key: AdminKey) -> dict[str, Any]:
    made = await ctx.run(lambda: ctx.keys.create(body.name, body.scopes, rate_limit=body.rate_limit))
    return {**asdict(made.key), "secret": made.secret}


@router.delete("/v1/keys/{id_or_name}")
async def revoke_key(id_or_name: str, ctx: Ctx, key: AdminKey) -> list[dict[str, Any]]:
    return [asdict(k) for k in await ctx.run(ctx.keys.revoke, id_or_name)]
