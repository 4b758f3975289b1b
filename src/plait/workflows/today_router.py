"""HTTP routes for what a mail workflow made of the day (the web page's Today view) and for correcting
its labels, as a FastAPI router the server mounts beside the workflow routes::

    GET  /v1/workflows/{name}/digest?period=latest     the digest's JSON (threads, labels, asks, dates)
    POST /v1/workflows/{name}/corrections              {"key": "...", "label": "work"}: the item carries
                                                       that label from now on; its text becomes an example
    GET  /v1/workflows/{name}/corrections              corrections per label, and whether to `plait tune`

The digest is the ``.json`` a ``mail-digest`` sink writes (``latest.json`` for ``period=latest``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_fastapi_missing: ImportError | None = None
try:
    from fastapi import APIRouter, HTTPException, Request
except ImportError as _exc:  # the `serve` extra is not installed
    _fastapi_missing = _exc

_PERIOD = re.compile(r"^(?:latest|\d{4}-\d{2}-\d{2}|\d{4}-W\d{2}|all)$")


class CorrectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=1000, description="the item's key (a digest message's `key`)")
    label: str = Field(min_length=1, max_length=64, description="the label it should carry")


def today_router(*, admin: Sequence[Any] = ()) -> Any:
    if _fastapi_missing is not None:
        from plait.errors import MissingDependency

        raise MissingDependency("the workflow HTTP routes", extra="serve") from _fastapi_missing
    router = APIRouter(tags=["workflows"])

    def workflow(request: Request, name: str) -> Any:
        from plait.workflows.enabled import discover, workflows_folder

        home = request.app.state.ctx.runtime.settings.home
        for found in discover(workflows_folder(home)):
            if found.workflow is not None and found.workflow.name == name:
                return found.workflow
        raise HTTPException(404, f"no enabled workflow '{name}'; enable it with `plait workflows enable {name}`")

    @router.get("/v1/workflows/{name}/digest", dependencies=list(admin))
    def digest(request: Request, name: str, period: str = "latest") -> Any:
        from plait.security.storage import read_text
        from plait.workflows.outputs import output_folder
        from plait.workflows.sinks.mail_digest import MailDigestOptions, digest_json

        if not _PERIOD.match(period):
            raise HTTPException(422, "period: give latest, a day (2024-05-02) or a week (2024-W18)")
        wf = workflow(request, name)
        home = request.app.state.ctx.runtime.settings.home
        sink = next((s for s in wf.steps if getattr(s, "sink", None) == "mail-digest"), None)
        if sink is None:
            raise HTTPException(404, f"workflow '{name}' writes no mail digest (no `mail-digest` sink)")
        template = str(sink.with_.get("path", MailDigestOptions.model_fields["path"].default))
        path = digest_json(template, output_folder(wf, home), period)
        if not path.is_file():
            raise HTTPException(404, f"no digest for {period} yet: the workflow has not handled mail of that "
                                     "period")
        return json.loads(read_text(path))

    @router.post("/v1/workflows/{name}/corrections", dependencies=list(admin))
    def correct(request: Request, name: str, body: CorrectionRequest) -> dict[str, Any]:
        from plait.errors import InputError
        from plait.workflows.corrections import correct as record

        rt = request.app.state.ctx.runtime
        try:
            return asdict(record(rt.store, workflow(request, name), rt.settings.home, body.key, body.label))
        except InputError as exc:
            raise HTTPException(422, str(exc)) from exc

    @router.get("/v1/workflows/{name}/corrections", dependencies=list(admin))
    def corrections(request: Request, name: str) -> dict[str, Any]:
        from plait.workflows.corrections import FOLDER, TUNE_AT, corrections_count, workflow_labels
        from plait.workflows.outputs import output_folder

        wf = workflow(request, name)
        counts = corrections_count(output_folder(wf, request.app.state.ctx.runtime.settings.home) / FOLDER)
        labels = workflow_labels(wf)
        return {"counts": counts, "labels": labels, "tune_at": TUNE_AT,
                "tune": bool(labels) and all(counts.get(k, 0) >= TUNE_AT for k in labels)}

    return router
