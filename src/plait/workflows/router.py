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


class Doors:
    """How the routes reach the runtime, the runner and the workflow definitions (given by the app)."""

    def __init__(self, runtime: Callable[[Any], Runtime] | None, runner: Callable[[Any], Runner | None] | None,
                 folder: Callable[[Any], Any] | None) -> None:
        self._runtime, self._runner, self._folder = runtime, runner, folder

    def runtime(self, request: Request) -> Runtime:
        if self._runtime is not None:
            return self._runtime(request)
        found: Runtime = request.app.state.ctx.runtime
        return found

    def runner(self, request: Request) -> Runner | None:
        if self._runner is not None:
            return self._runner(request)
        return getattr(request.app.state, "workflows", None)

    def wake(self, request: Request, name: str) -> bool:
        """Tell a running workflow it has new items; whether it is running here."""
        rn = self.runner(request)
        if rn is not None and name in rn.slots:
            rn.wake(name)
            return True
        return False

    def definitions(self, request: Request) -> dict[str, tuple[str | None, Any, str | None]]:
        """Workflow name → (file, workflow or None, problem), from the runner or the enabled folder."""
        from plait.workflows.enabled import discover, workflows_folder

        rn = self.runner(request)
        if rn is not None:
            out: dict[str, tuple[str | None, Any, str | None]] = {
                name: (str(slot.path) if slot.path else None, slot.workflow, slot.error)
                for name, slot in rn.snapshot().items()}
            out.update({f: (f, None, p) for f, p in rn.problems.items()})
            return out
        base = self._folder(request) if self._folder else workflows_folder(self.runtime(request).settings.home)
        return {f.name: (str(f.path), f.workflow, str(f.error) if f.error else None) for f in discover(base)}

    def enabled(self, request: Request) -> list[str]:
        return sorted(n for n, d in self.definitions(request).items() if d[1] is not None)

    def known(self, request: Request, name: str) -> Any:
        defs = self.definitions(request)
        if name not in defs or defs[name][1] is None:
            raise HTTPException(404, f"no workflow '{name}'; enabled ones: "
                                     f"{', '.join(self.enabled(request)) or '(none)'}")
        return defs[name][1]


def workflow_router(*, runtime: Callable[[Any], Runtime] | None = None,
                    runner: Callable[[Any], Runner | None] | None = None, admin: Sequence[Any] = (),
                    folder: Callable[[Any], Any] | None = None) -> Any:
    """A FastAPI ``APIRouter`` with the workflow routes (see the module's docstring)."""
    if _fastapi_missing is not None:
        raise MissingDependency("workflow routes", extra="serve", package="fastapi") from _fastapi_missing
    doors = Doors(runtime, runner, folder)
    router = APIRouter(tags=["workflows"])
    for add in (_status_routes, _control_routes, _output_routes, _today_routes):
        add(router, doors, list(admin))
    _webhook_route(router, doors)
    return router


def _status_routes(router: APIRouter, doors: Doors, admin: list[Any]) -> None:
    from plait.workflows.enabled import bundled
    from plait.workflows.state import WorkflowState, workflow_names
    from plait.workflows.status import workflow_status

    def status(request: Request, name: str, *, detail: bool, **limits: int) -> dict[str, Any]:
        st = workflow_status(doors.runtime(request).store, name, **limits)
        file, wf, problem = doors.definitions(request).get(name, (None, None, None))
        st.file, st.problem = file, problem
        st.enabled = wf.enabled if wf is not None else None
        if wf is not None and detail:
            st.extra["trigger"] = wf.trigger.type
            st.extra["description"] = wf.description
        return st.as_dict()

    @router.get("/v1/workflows", dependencies=admin)
    def list_workflows(request: Request) -> list[dict[str, Any]]:
        names = set(doors.definitions(request)) | set(workflow_names(doors.runtime(request).store))
        return [status(request, name, detail=False, failed_limit=5, runs=1) for name in sorted(names)]

    @router.get("/v1/workflows/bundled", dependencies=admin)
    def list_bundled(request: Request) -> list[dict[str, Any]]:
        """The workflows that come with plait, and whether each is enabled here."""
        from plait.workflows.loader import load_workflow

        enabled_names = set(doors.enabled(request))
        out = []
        for path in bundled():
            wf = load_workflow(path)
            out.append({"name": wf.name, "description": wf.description, "trigger": wf.trigger.type,
                        "enabled": wf.name in enabled_names})
        return out

    @router.get("/v1/workflows/{name}", dependencies=admin)
    def get_workflow(request: Request, name: str) -> dict[str, Any]:
        if name not in doors.definitions(request) and name not in workflow_names(doors.runtime(request).store):
            raise HTTPException(404, f"no workflow '{name}'")
        return status(request, name, detail=True, runs=10)

    @router.get("/v1/workflows/{name}/items", dependencies=admin)
    def list_items(request: Request, name: str, state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = WorkflowState(doors.runtime(request).store, name).items(state, max(1, min(limit, 1000)))
        return [{"key": r.key, "state": r.state, "attempts": r.attempts, "error": r.error,
                 "updated_at": r.updated_at, "data": r.data} for r in rows]


def _control_routes(router: APIRouter, doors: Doors, admin: list[Any]) -> None:
    from plait.workflows.enabled import disable, enable, workflows_folder
    from plait.workflows.state import WorkflowState

    @router.post("/v1/workflows/{name}/run", dependencies=admin, status_code=202)
    def run_workflow(request: Request, name: str, body: RunRequest | None = None) -> dict[str, Any]:
        doors.known(request, name)  # 404 for a workflow that is not enabled
        items = body.items if body else []
        given = body.keys if body and body.keys is not None else [None] * len(items)
        if len(given) != len(items):
            raise HTTPException(422, "`keys`, when given, must be a list as long as `items`")
        rn = doors.runner(request)
        keys = []
        if rn is not None and name in rn.slots:
            keys = [rn.submit(name, item, key) for item, key in zip(items, given, strict=True)]
        else:
            state = WorkflowState(doors.runtime(request).store, name)
            keys = [state.submit(item, key) for item, key in zip(items, given, strict=True)]
        return {"workflow": name, "accepted": keys, "running": doors.wake(request, name)}

    @router.post("/v1/workflows/{name}/retry", dependencies=admin)
    def retry_workflow(request: Request, name: str, body: RetryRequest | None = None) -> dict[str, Any]:
        count = WorkflowState(doors.runtime(request).store, name).retry(body.keys if body else None)
        doors.wake(request, name)
        return {"workflow": name, "retried": count}

    @router.post("/v1/workflows/{name}/enable", dependencies=admin)
    def enable_workflow(request: Request, name: str) -> dict[str, Any]:
        """Enable a bundled workflow, or one disabled before, by name (never by path: a request chooses no file)."""
        from plait.workflows.loader import load_workflow

        if not _NAME.match(name):
            raise HTTPException(400, f"'{name}' is not a workflow name")
        path = enable(name, workflows_folder(doors.runtime(request).settings.home))
        rn = doors.runner(request)
        if rn is not None:
            rn.add(load_workflow(path), path)
        return {"workflow": name, "file": str(path), "running": rn is not None}

    @router.post("/v1/workflows/{name}/disable", dependencies=admin)
    def disable_workflow(request: Request, name: str) -> dict[str, Any]:
        parked = disable(name, workflows_folder(doors.runtime(request).settings.home))
        rn = doors.runner(request)
        if rn is not None:
            rn.remove(name)
        return {"workflow": name, "file": str(parked)}


def _output_routes(router: APIRouter, doors: Doors, admin: list[Any]) -> None:
    from plait.workflows.outputs import list_outputs, output_folder, read_output

    @router.get("/v1/workflows/{name}/outputs", dependencies=admin)
    def list_workflow_outputs(request: Request, name: str) -> dict[str, Any]:
        folder = output_folder(doors.known(request, name), doors.runtime(request).settings.home)
        return {"workflow": name, "folder": str(folder), "files": [vars(f) for f in list_outputs(folder)]}

    @router.get("/v1/workflows/{name}/outputs/{path:path}", dependencies=admin)
    def get_workflow_output(request: Request, name: str, path: str) -> Response:
        wf = doors.known(request, name)
        try:
            content = read_output(output_folder(wf, doors.runtime(request).settings.home), path)
        except InputError as exc:
            raise HTTPException(404, str(exc)) from exc
        media = _OUTPUT_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")
        # Made from mail and feeds: shown, never run (no script, no form, no outside load).
        return Response(content, media_type=media, headers={
            "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff"})


def _today_routes(router: APIRouter, doors: Doors, admin: list[Any]) -> None:
    from plait.workflows.outputs import output_folder

    @router.get("/v1/today", dependencies=admin)
    def get_today(request: Request) -> dict[str, Any]:
        """What the workflows made for the person's day (see plait.workflows.today), and how to get more."""
        from plait.workflows.spec import SinkStep, walk_steps
        from plait.workflows.today import today

        kinds = {}
        for name, (_, wf, _) in doors.definitions(request).items():
            for _, step in walk_steps(wf.steps) if wf is not None else []:
                if isinstance(step, SinkStep) and step.sink in ("digest", "mail-digest", "ics"):
                    kinds[(name, step.step_id)] = step.sink
        sections = today(doors.runtime(request).store, kinds)
        return {"sections": [vars(s) for s in sections], "enabled": doors.enabled(request)}

    @router.post("/v1/today/decisions", dependencies=admin)
    def decide_proposal(request: Request, body: DecisionRequest) -> dict[str, Any]:
        from plait.workflows.today import decide

        wf = doors.known(request, body.workflow)
        rt = doors.runtime(request)
        written = decide(rt.store, body.workflow, body.sink, body.item_key, body.decision,
                         output_folder(wf, rt.settings.home))
        return {"decision": body.decision, "calendar": str(written) if written else None}


def _refuse(status: int, message: str, kind: str, retry_after: float | None = None) -> Any:
    from plait.serve.ratelimit import retry_after_header

    headers = {"Retry-After": retry_after_header(retry_after)} if retry_after else None
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


def _webhook_route(router: APIRouter, doors: Doors) -> None:
    from plait.serve.ratelimit import RateLimiter

    deliveries = RateLimiter()

    @router.post("/v1/workflows/{name}/webhook", status_code=202)
    async def webhook(request: Request, name: str) -> Any:
        rt = doors.runtime(request)
        if (refused := _unauthenticated(request, rt, name)) is not None:
            return refused
        request.state.api_key, request.state.api_key_id = f"webhook:{name}", f"webhook:{name}"
        wf = doors.known(request, name)
        if wf.trigger.type != "webhook":
            raise HTTPException(409, f"workflow '{name}' is triggered by {wf.trigger.type}, not webhooks")
        ctx = getattr(request.app.state, "ctx", None)
        settings = getattr(ctx, "settings", None) or rt.settings  # the server's settings, else the runtime's
        wait = deliveries.check(name, settings.webhook_rate_per_minute)
        if wait > 0:
            return _refuse(429, f"workflow '{name}' takes {settings.webhook_rate_per_minute} deliveries a minute "
                                "(setting webhook_rate_per_minute); retry later", "rate_limit_error", wait)
        limit = int(wf.trigger.options.get("max_bytes", 1_000_000))
        raw = await request.body()
        if len(raw) > limit:
            raise HTTPException(413, f"the body is {len(raw)} bytes; this webhook takes at most {limit}")
        quota = settings.webhook_pending_bytes
        if quota and _pending_bytes(rt, name) + len(raw) > quota:
            return _refuse(429, f"workflow '{name}' has {quota} bytes of items waiting (setting "
                                "webhook_pending_bytes); retry once it has caught up", "rate_limit_error", 60)
        key, added = _record_delivery(request, rt, name, raw)
        doors.wake(request, name)
        return {"workflow": name, "key": key, "duplicate": not added}


def _unauthenticated(request: Request, rt: Runtime, name: str) -> Any:
    """The refusal of a delivery without the workflow's key (backing off a client that keeps guessing)."""
    from plait.workflows.webhook_keys import verify_webhook_key

    ctx = getattr(request.app.state, "ctx", None)
    backoff = getattr(ctx, "backoff", None)
    client = request.client.host if request.client else "?"
    if backoff is not None and backoff.wait(client) > 0:
        return _refuse(429, "too many deliveries with a wrong webhook key; retry later", "rate_limit_error",
                       backoff.wait(client))
    secret = request.headers.get(WEBHOOK_HEADER) or request.query_params.get("key")
    if verify_webhook_key(rt.store, name, secret):
        return None
    if ctx is not None and backoff is not None and secret:
        from plait.serve.deps import auth_failed

        auth_failed(ctx, request, client)
    return _refuse(401, "missing or wrong webhook key: send the workflow's key as X-Plait-Webhook-Key "
                        "(`plait workflows webhook-key NAME`)", "authentication_error")


def _record_delivery(request: Request, rt: Runtime, name: str, raw: bytes) -> tuple[str, bool]:
    """The delivery as one item (its key, and whether it is new: a retried delivery is recorded once)."""
    from plait.workflows.state import WorkflowState
    from plait.workflows.steps import to_jsonable

    text = raw.decode("utf-8", "replace")
    try:
        payload: Any = json.loads(text) if raw.strip() else None
    except json.JSONDecodeError:
        payload = None
    # Stored once: parsed JSON, or the text. Never spread into the item's own fields, where a sink's
    # `{{ item.path }}` or a URL template would pick a sender's value up as if plait had found it.
    data: dict[str, Any] = {"body": payload} if payload is not None else {"text": text}
    client = request.client.host if request.client else "?"
    data.update(content_type=request.headers.get("content-type", "")[:200], received_from=client)
    delivery = request.headers.get("idempotency-key") or request.headers.get("x-request-id") or uuid.uuid4().hex
    key = f"webhook:{delivery[:200]}"
    added = WorkflowState(rt.store, name).add_items([(key, to_jsonable(data), None)], cursor=None, trigger="webhook")
    return key, bool(added)


def _pending_bytes(rt: Runtime, workflow: str) -> int:
    """Bytes of the items a workflow has not finished yet (what a flood of deliveries would pile up)."""
    rows = rt.store.query("SELECT COALESCE(SUM(LENGTH(CAST(data AS BLOB))), 0) FROM workflow_items "
                          "WHERE workflow = ? AND state IN ('pending', 'running')", (workflow,))
    return int(rows[0][0])
