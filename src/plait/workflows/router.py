"""HTTP routes for workflows, as a FastAPI router the server mounts::

    from plait.workflows.router import workflow_router
    app.include_router(workflow_router(
        runtime=lambda request: request.app.state.ctx.runtime,       # the app's Runtime
        runner=lambda request: request.app.state.workflows,          # the Runner `plait up` started, or None
        admin=[Depends(require("admin"))],                           # who may see and start workflows
    ))

Routes:

- ``GET  /v1/workflows``                 every known workflow: item counts, progress, live run, problems
- ``GET  /v1/workflows/{name}``           one workflow: counts, progress, last runs, failed items, sink effects
- ``POST /v1/workflows/{name}/run``       ``{"items": [{...}, …]}`` adds manual items; no body: look at the
  trigger now. 202 with the items' keys.
- ``POST /v1/workflows/{name}/retry``     failed items (``{"keys": [...]}`` or all) go back to pending
- ``POST /v1/workflows/{name}/webhook``   a webhook delivery: authenticated by the workflow's own key
  (``X-Plait-Webhook-Key`` header or ``?key=``; ``plait workflows webhook-key NAME``), not by API keys.
  The body becomes one item, recorded before the 202 answer: parsed JSON as ``item.body``, anything else
  as ``item.text`` (stored once). The sender's fields stay under ``item.body``: they are data, never
  item fields a sink would take as a path or URL. ``Idempotency-Key`` (or ``X-Request-Id``) names the
  delivery: a retried delivery is recorded once. Each workflow takes at most ``webhook_rate_per_minute``
  deliveries a minute and holds at most ``webhook_pending_bytes`` of items waiting (429 beyond either);
  wrong keys back off like wrong API keys.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plait.errors import InputError, MissingDependency

# FastAPI resolves the routes' annotations (Request…) from this module's globals: import at the top.
_fastapi_missing: ImportError | None = None
try:
    from fastapi import APIRouter, HTTPException, Request
    from fastapi.responses import JSONResponse, Response
except ImportError as _exc:  # the `serve` extra is not installed
    _fastapi_missing = _exc

if TYPE_CHECKING:
    from plait.runtime import Runtime
    from plait.workflows.runner import Runner

WEBHOOK_HEADER = "x-plait-webhook-key"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_OUTPUT_TYPES = {".md": "text/plain; charset=utf-8", ".txt": "text/plain; charset=utf-8",
                 ".csv": "text/plain; charset=utf-8", ".ics": "text/calendar; charset=utf-8",
                 ".json": "application/json", ".html": "text/html; charset=utf-8", ".png": "image/png",
                 ".eml": "text/plain; charset=utf-8"}


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[dict[str, Any]] = Field(default_factory=list, description="manual items to add")
    keys: list[str | None] | None = Field(None, description="a key per item (a key given twice is one item)")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: str = Field(min_length=1, max_length=100)
    sink: str = Field(min_length=1, max_length=200)
    item_key: str = Field(min_length=1, max_length=1000)
    decision: Literal["accept", "decline"]


class RetryRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[str] | None = Field(None, description="the failed items to retry (default: all)")


def workflow_router(*, runtime: Callable[[Any], Runtime] | None = None,
                    runner: Callable[[Any], Runner | None] | None = None, admin: Sequence[Any] = (),
                    folder: Callable[[Any], Any] | None = None) -> Any:
    """A FastAPI ``APIRouter`` with the workflow routes (see the module's docstring)."""
    if _fastapi_missing is not None:
        raise MissingDependency("workflow routes", extra="serve", package="fastapi") from _fastapi_missing
    from plait.serve.ratelimit import RateLimiter, retry_after_header
    from plait.workflows.enabled import bundled, disable, discover, enable, workflows_folder
    from plait.workflows.outputs import list_outputs, output_folder, read_output
    from plait.workflows.state import WorkflowState, workflow_names
    from plait.workflows.status import workflow_status
    from plait.workflows.steps import to_jsonable
    from plait.workflows.webhook_keys import verify_webhook_key

    def get_runtime(request: Request) -> Runtime:
        if runtime is not None:
            return runtime(request)
        found: Runtime = request.app.state.ctx.runtime
        return found

    def get_runner(request: Request) -> Runner | None:
        if runner is not None:
            return runner(request)
        return getattr(request.app.state, "workflows", None)

    def definitions(request: Request) -> dict[str, Any]:
        """Workflow name → (file, workflow or None, problem), from the runner or the enabled folder."""
        rn = get_runner(request)
        if rn is not None:
            out: dict[str, tuple[str | None, Any, str | None]] = {
                name: (str(slot.path) if slot.path else None, slot.workflow, slot.error)
                for name, slot in rn.slots.items()}
            out.update({f: (f, None, p) for f, p in rn.problems.items()})
            return out
        base = folder(request) if folder else workflows_folder(get_runtime(request).settings.home)
        return {f.name: (str(f.path), f.workflow, str(f.error) if f.error else None) for f in discover(base)}

    def known(request: Request, name: str) -> Any:
        defs = definitions(request)
        if name not in defs or defs[name][1] is None:
            raise HTTPException(404, f"no workflow '{name}'; enabled ones: "
                                     f"{', '.join(sorted(n for n, d in defs.items() if d[1])) or '(none)'}")
        return defs[name][1]

    router = APIRouter(tags=["workflows"])

    @router.get("/v1/workflows", dependencies=list(admin))
    def list_workflows(request: Request) -> list[dict[str, Any]]:
        rt = get_runtime(request)
        defs = definitions(request)
        out = []
        for name in sorted(set(defs) | set(workflow_names(rt.store))):
            st = workflow_status(rt.store, name, failed_limit=5, runs=1)
            file, wf, problem = defs.get(name, (None, None, None))
            st.file, st.problem = file, problem
            st.enabled = wf.enabled if wf is not None else None
            out.append(st.as_dict())
        return out

    @router.get("/v1/workflows/bundled", dependencies=list(admin))
    def list_bundled(request: Request) -> list[dict[str, Any]]:
        """The workflows that come with plait, and whether each is enabled here."""
        from plait.workflows.loader import load_workflow

        enabled_names = {n for n, d in definitions(request).items() if d[1] is not None}
        out = []
        for path in bundled():
            wf = load_workflow(path)
            out.append({"name": wf.name, "description": wf.description, "trigger": wf.trigger.type,
                        "enabled": wf.name in enabled_names})
        return out

    @router.get("/v1/workflows/{name}", dependencies=list(admin))
    def get_workflow(request: Request, name: str) -> dict[str, Any]:
        rt = get_runtime(request)
        defs = definitions(request)
        if name not in defs and name not in workflow_names(rt.store):
            raise HTTPException(404, f"no workflow '{name}'")
        st = workflow_status(rt.store, name, runs=10)
        file, wf, problem = defs.get(name, (None, None, None))
        st.file, st.problem = file, problem
        st.enabled = wf.enabled if wf is not None else None
        if wf is not None:
            st.extra["trigger"] = wf.trigger.type
            st.extra["description"] = wf.description
        return st.as_dict()

    @router.post("/v1/workflows/{name}/run", dependencies=list(admin), status_code=202)
    def run_workflow(request: Request, name: str, body: RunRequest | None = None) -> dict[str, Any]:
        wf = known(request, name)
        items = body.items if body else []
        given = body.keys if body and body.keys is not None else [None] * len(items)
        if len(given) != len(items):
            raise HTTPException(422, "`keys`, when given, must be a list as long as `items`")
        rn = get_runner(request)
        keys = []
        if rn is not None and name in rn.slots:
            keys = [rn.submit(name, item, key) for item, key in zip(items, given, strict=True)]
            rn.wake(name)
        else:
            state = WorkflowState(get_runtime(request).store, name)
            for item, key in zip(items, given, strict=True):
                key = key or f"manual:{uuid.uuid4().hex}"
                state.add_items([(key, to_jsonable(item), None)], cursor=None, trigger=wf.trigger.type)
                keys.append(key)
        return {"workflow": name, "accepted": keys, "running": rn is not None and name in (rn.slots if rn else {})}

    @router.post("/v1/workflows/{name}/retry", dependencies=list(admin))
    def retry_workflow(request: Request, name: str, body: RetryRequest | None = None) -> dict[str, Any]:
        keys = body.keys if body else None
        count = WorkflowState(get_runtime(request).store, name).retry(keys)
        rn = get_runner(request)
        if rn is not None and name in rn.slots:
            rn.wake(name)
        return {"workflow": name, "retried": count}

    @router.post("/v1/workflows/{name}/enable", dependencies=list(admin))
    def enable_workflow(request: Request, name: str) -> dict[str, Any]:
        """Enable a bundled workflow, or one disabled before, by name (never by path: a request chooses no file)."""
        from plait.workflows.loader import load_workflow

        if not _NAME.match(name):
            raise HTTPException(400, f"'{name}' is not a workflow name")
        home = get_runtime(request).settings.home
        path = enable(name, workflows_folder(home))
        rn = get_runner(request)
        if rn is not None:
            rn.add(load_workflow(path), path)
        return {"workflow": name, "file": str(path), "running": rn is not None}

    @router.post("/v1/workflows/{name}/disable", dependencies=list(admin))
    def disable_workflow(request: Request, name: str) -> dict[str, Any]:
        parked = disable(name, workflows_folder(get_runtime(request).settings.home))
        rn = get_runner(request)
        if rn is not None:
            rn.remove(name)
        return {"workflow": name, "file": str(parked)}

    @router.get("/v1/workflows/{name}/items", dependencies=list(admin))
    def list_items(request: Request, name: str, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = WorkflowState(get_runtime(request).store, name).items(state, max(1, min(limit, 1000)))
        return [{"key": r.key, "state": r.state, "attempts": r.attempts, "error": r.error,
                 "updated_at": r.updated_at, "data": r.data} for r in rows]

    @router.get("/v1/workflows/{name}/outputs", dependencies=list(admin))
    def list_workflow_outputs(request: Request, name: str) -> dict[str, Any]:
        wf = known(request, name)
        folder = output_folder(wf, get_runtime(request).settings.home)
        return {"workflow": name, "folder": str(folder), "files": [vars(f) for f in list_outputs(folder)]}

    @router.get("/v1/workflows/{name}/outputs/{path:path}", dependencies=list(admin))
    def get_workflow_output(request: Request, name: str, path: str) -> Response:
        wf = known(request, name)
        try:
            content = read_output(output_folder(wf, get_runtime(request).settings.home), path)
        except InputError as exc:
            raise HTTPException(404, str(exc)) from exc
        media = _OUTPUT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")
        # Made from mail and feeds: shown, never run (no script, no form, no outside load).
        return Response(content, media_type=media, headers={
            "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff"})

    @router.get("/v1/today", dependencies=list(admin))
    def get_today(request: Request) -> dict[str, Any]:
        """What the workflows made for the person's day (see plait.workflows.today), and how to get more."""
        from plait.workflows.spec import SinkStep, walk_steps
        from plait.workflows.today import today

        kinds = {}
        for name, (_, wf, _) in definitions(request).items():
            for _, step in walk_steps(wf.steps) if wf is not None else []:
                if isinstance(step, SinkStep) and step.sink in ("digest", "ics"):
                    kinds[(name, step.step_id)] = step.sink
        sections = today(get_runtime(request).store, kinds)
        return {"sections": [vars(s) for s in sections], "enabled": sorted(n for n, d in definitions(request).items()
                                                                            if d[1] is not None)}

    @router.post("/v1/today/decisions", dependencies=list(admin))
    def decide_proposal(request: Request, body: DecisionRequest) -> dict[str, Any]:
        from plait.workflows.today import decide

        wf = known(request, body.workflow)
        rt = get_runtime(request)
        written = decide(rt.store, body.workflow, body.sink, body.item_key, body.decision,
                         output_folder(wf, rt.settings.home))
        return {"decision": body.decision, "calendar": str(written) if written else None}

    deliveries = RateLimiter()

    def refuse(status: int, message: str, kind: str, retry_after: float | None = None) -> Any:
        headers = {"Retry-After": retry_after_header(retry_after)} if retry_after else None
        return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)

    @router.post("/v1/workflows/{name}/webhook", status_code=202)
    async def webhook(request: Request, name: str) -> Any:
        rt = get_runtime(request)
        ctx = getattr(request.app.state, "ctx", None)
        backoff = getattr(ctx, "backoff", None)
        client = request.client.host if request.client else "?"
        if backoff is not None and backoff.wait(client) > 0:
            return refuse(429, "too many deliveries with a wrong webhook key; retry later", "rate_limit_error",
                          backoff.wait(client))
        secret = request.headers.get(WEBHOOK_HEADER) or request.query_params.get("key")
        if not verify_webhook_key(rt.store, name, secret):
            if ctx is not None and backoff is not None and secret:
                from plait.serve.deps import auth_failed

                auth_failed(ctx, request, client)
            return refuse(401, "missing or wrong webhook key: send the workflow's key as X-Plait-Webhook-Key "
                               "(`plait workflows webhook-key NAME`)", "authentication_error")
        request.state.api_key, request.state.api_key_id = f"webhook:{name}", f"webhook:{name}"
        wf = known(request, name)
        if wf.trigger.type != "webhook":
            raise HTTPException(409, f"workflow '{name}' is triggered by {wf.trigger.type}, not webhooks")
        settings = getattr(ctx, "settings", None) or rt.settings  # the server's settings, else the runtime's
        wait = deliveries.check(name, settings.webhook_rate_per_minute)
        if wait > 0:
            return refuse(429, f"workflow '{name}' takes {settings.webhook_rate_per_minute} deliveries a minute "
                               "(setting webhook_rate_per_minute); retry later", "rate_limit_error", wait)
        limit = int(wf.trigger.options.get("max_bytes", 1_000_000))
        raw = await request.body()
        if len(raw) > limit:
            raise HTTPException(413, f"the body is {len(raw)} bytes; this webhook takes at most {limit}")
        state = WorkflowState(rt.store, name)
        quota = settings.webhook_pending_bytes
        if quota and _pending_bytes(rt, name) + len(raw) > quota:
            return refuse(429, f"workflow '{name}' has {quota} bytes of items waiting (setting "
                               "webhook_pending_bytes); retry once it has caught up", "rate_limit_error", 60)
        text = raw.decode("utf-8", "replace")
        try:
            payload: Any = json.loads(text) if raw.strip() else None
        except json.JSONDecodeError:
            payload = None
        # Stored once: parsed JSON, or the text. Never spread into the item's own fields, where a sink's
        # `{{ item.path }}` or a URL template would pick a sender's value up as if plait had found it.
        data: dict[str, Any] = {"body": payload} if payload is not None else {"text": text}
        data.update(content_type=request.headers.get("content-type", "")[:200], received_from=client)
        delivery = request.headers.get("idempotency-key") or request.headers.get("x-request-id") or uuid.uuid4().hex
        key = f"webhook:{delivery[:200]}"
        added = state.add_items([(key, to_jsonable(data), None)], cursor=None, trigger="webhook")
        rn = get_runner(request)
        if rn is not None and name in rn.slots:
            rn.wake(name)
        return {"workflow": name, "key": key, "duplicate": not added}

    return router


def _pending_bytes(rt: Runtime, workflow: str) -> int:
    """Bytes of the items a workflow has not finished yet (what a flood of deliveries would pile up)."""
    rows = rt.store.query("SELECT COALESCE(SUM(LENGTH(CAST(data AS BLOB))), 0) FROM workflow_items "
                          "WHERE workflow = ? AND state IN ('pending', 'running')", (workflow,))
    return int(rows[0][0])
