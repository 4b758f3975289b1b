"""Task routes (/v1/summarize, /v1/classify, …): thin typed routes over the functions in ``plait.tasks``.

Each task is declared once, by a function decorated with :func:`task_route`, that imports its task module
and returns a :class:`TaskSpec`: the request and response types (which make the OpenAPI document), the
scope a key needs, and how to call the task. :func:`build_router` turns each spec into a route that
checks the key, answers from the cache when it may, and runs the task in a worker thread, or, for a task
that batches, through a micro-batcher shared by concurrent requests. Adding a task is one such function.

A task whose module is not there (an optional part not installed or not written yet) gets no route,
and a declaration that no longer matches its module is logged and skipped rather than taking the whole
server down; a unit test builds every declaration so such drift fails CI instead.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import inspect
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from plait.errors import InputError
from plait.runtime import Runtime
from plait.serve.auth import Scope
from plait.serve.context import ServerContext
from plait.serve.deps import get_context, require
from plait.serve.openai_schema import ERRORS

log = logging.getLogger("plait.serve")


@dataclass(frozen=True)
class Batched:
    """How a task runs the items of many requests in one model call.

    ``items(body)`` gives a request's items; ``key(body)`` groups requests that may share a batch (same
    model, same labels…); ``runner(body, runtime)`` makes the batch function for a group (called once
    per group, so it may hold a prepared classifier); ``answer(body, results)`` builds a response from
    the request's own results.
    """

    items: Callable[[Any], Sequence[Any]]
    key: Callable[[Any], Any]
    runner: Callable[[Any, Runtime], Callable[[list[Any]], Sequence[Any]]]
    answer: Callable[[Any, list[Any]], Any]


@dataclass(frozen=True)
class TaskSpec:
    request: type[Any]  # a pydantic model with extra="forbid"
    response: Any  # a type pydantic can validate and document: a dataclass, a model, a union of them
    call: Callable[[Any, Runtime], Any] | None = None  # runs the task for one request (blocking)
    batched: Batched | None = None
    scope: Scope = "tasks"
    # Whether an answer may be cached; a task whose output is sampled says per request.
    cacheable: Callable[[Any], bool] = lambda body: True
    # The catalog names an answer depends on, so a changed model is a new cache key.
    models: Callable[[Any, Any], Sequence[str | None]] = lambda body, settings: ()
    # Responses that are not JSON (speak: audio/wav).
    media_type: str = "application/json"
    also_streams: bool = False  # answers text/event-stream when the request asks to stream
    render: Callable[[Any], bytes] | None = None
    summary: str = ""
    # Custom handling (ask streams): an async function (http, body, ctx, key) -> Response.
    handler: Callable[..., Any] | None = None


@dataclass(frozen=True)
class TaskRoute:
    name: str  # the route is POST /v1/{name}
    module: str  # plait.tasks.{module}: without it, no route
    declare: Callable[[], TaskSpec]


TASK_ROUTES: dict[str, TaskRoute] = {}


def task_route(name: str, module: str | None = None) -> Callable[[Callable[[], TaskSpec]], Callable[[], TaskSpec]]:
    def register(declare: Callable[[], TaskSpec]) -> Callable[[], TaskSpec]:
        if name in TASK_ROUTES:
            raise ValueError(f"task route '{name}' is declared twice")
        TASK_ROUTES[name] = TaskRoute(name, module or name, declare)
        return declare
    return register


def module_exists(route: TaskRoute) -> bool:
    try:
        return importlib.util.find_spec(f"plait.tasks.{route.module}") is not None
    except ImportError:
        return False


def decode_base64(value: str, what: str) -> bytes:
    """Uploaded file content. Routes take content, never a path: no route reads the server's files."""
    if value.startswith("data:") and "," in value:  # a data: URL from a browser
        value = value.split(",", 1)[1]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} must be base64-encoded file content") from exc
    if not data:
        raise InputError(f"{what} is empty")
    return data


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _endpoint(name: str, spec: TaskSpec) -> Callable[..., Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(spec.response)

    async def endpoint(http: Request, body: Any, ctx: ServerContext, key: Any) -> Response:
        if spec.handler is not None:
            return await spec.handler(http, body, ctx, key)
        versions = [ctx.version(ctx.runtime.catalog.get(m)) for m in spec.models(body, ctx.settings) if m]
        cache_key = None
        if spec.cacheable(body):
            cache_key, hit = ctx.cached("task", name, versions, body.model_dump(mode="json"))
            if hit is not None:
                return Response(hit, media_type=spec.media_type)
        if spec.batched is not None:
            b, runtime = spec.batched, ctx.runtime
            group = b.key(body)
            batcher = ctx.batchers.get((name, group), lambda: b.runner(body, runtime))
            result = b.answer(body, await batcher.submit(list(b.items(body))))
        else:
            assert spec.call is not None
            result = await ctx.run(spec.call, body, ctx.runtime)
        content = spec.render(result) if spec.render else _dumps(adapter.dump_python(result, mode="json"))
        if cache_key is not None:
            ctx.cache.put(cache_key, content)
        return Response(content, media_type=spec.media_type)

    # FastAPI reads the signature for the body model, the dependencies and the OpenAPI document.
    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("http", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=spec.request),
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ServerContext,
                          default=Depends(get_context)),
        inspect.Parameter("key", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=Depends(require(spec.scope))),
    ], return_annotation=Response)
    endpoint.__name__ = name
    return endpoint


def build_router(routes: Sequence[TaskRoute] | None = None) -> tuple[APIRouter, list[str]]:
    """A router with a route per task whose module exists; returns it and the names routed."""
    from plait.serve.routes import task_defs  # noqa: F401  (declares the built-in task routes)

    router = APIRouter(tags=["Tasks"])
    added = []
    for route in TASK_ROUTES.values() if routes is None else routes:
        if not module_exists(route):
            continue
        try:
            spec = route.declare()
        except ImportError as exc:  # a task's optional library is missing: the task itself says so on use
            log.warning("no route /v1/%s: %s", route.name, exc)
            continue
        responses: dict[int | str, dict[str, Any]] = dict(ERRORS)
        if spec.media_type != "application/json":
            responses[200] = {"content": {spec.media_type: {}}, "description": "the result"}
        elif spec.also_streams:
            responses[200] = {"content": {"text/event-stream": {}},
                              "description": "JSON, or server-sent events when stream is true"}
        router.add_api_route(f"/v1/{route.name}", _endpoint(route.name, spec), methods=["POST"],
                             response_model=None if spec.render else spec.response,
                             responses=responses, summary=spec.summary or None, name=route.name)
        added.append(route.name)
    return router, added
