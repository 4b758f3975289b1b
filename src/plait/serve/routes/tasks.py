"""Task routes (/v1/summarize, /v1/classify, …): thin typed routes over the functions in ``plait.tasks``.

Each task is described once by a :class:`TaskRoute`: its request and response models (which make the
OpenAPI document), the scope a key needs, and how to call the task function. :func:`add_task_routes`
turns each description into a route that checks the key, answers from the cache when it can, runs the
task in a worker thread (or, for tasks that batch, through a micro-batcher shared by concurrent
requests) and returns the typed answer. Adding a task is a request model, a response model and one
``TaskRoute`` in :data:`TASK_ROUTES`.

Tasks whose module is not installed yet are skipped, so the server runs with whatever tasks exist.
"""

import importlib.util
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import BaseModel

from plait.runtime import Runtime
from plait.serve.auth import Scope
from plait.serve.context import ServerContext
from plait.serve.deps import get_context, require
from plait.serve.openai_schema import ERRORS


@dataclass(frozen=True)
class Batched:
    """How a task runs many requests' items in one model call.

    ``items(body)`` gives a request's items; ``key(body, settings)`` groups requests that may share a batch
    (same model, same labels…); ``run(items, body, runtime)`` runs one batch (with the first request's
    body as the template for its parameters) and returns one result per item; ``answer(body, results)``
    builds the response from a request's own results.
    """

    items: Callable[[Any], Sequence[Any]]
    key: Callable[[Any, Any], Any]
    run: Callable[[list[Any], Any, Runtime], Sequence[Any]]
    answer: Callable[[Any, list[Any]], Any]


@dataclass(frozen=True)
class TaskRoute:
    name: str                                  # the route is /v1/{name}
    module: str                                # plait.tasks.{module}: skipped while it does not exist
    request: type[BaseModel]
    response: type[BaseModel]
    call: Callable[[Any, Runtime], Any] | None = None  # runs the task for one request (blocking)
    batched: Batched | None = None
    scope: Scope = "tasks"
    # Whether an answer may be cached: a task whose output is sampled says so per request.
    cacheable: Callable[[Any], bool] = lambda body: True
    # The model names an answer depends on, so a changed model is a new cache key.
    models: Callable[[Any, Any], Sequence[str]] = lambda body, settings: ()
    summary: str = ""


def to_jsonable(result: Any) -> Any:
    """A task's result (a pydantic model, a dataclass, or plain data) as JSON-ready data."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    if is_dataclass(result) and not isinstance(result, type):
        return asdict(result)
    return result


TASK_ROUTES: list[TaskRoute] = []


def register_task_route(route: TaskRoute) -> TaskRoute:
    if any(r.name == route.name for r in TASK_ROUTES):
        raise ValueError(f"task route '{route.name}' is registered twice")
    TASK_ROUTES.append(route)
    return route


def available(route: TaskRoute) -> bool:
    try:
        return importlib.util.find_spec(f"plait.tasks.{route.module}") is not None
    except ModuleNotFoundError:
        return False


def _endpoint(route: TaskRoute) -> Callable[..., Any]:
    async def endpoint(body: Any, ctx: ServerContext, key: Any) -> Response:
        settings = ctx.settings
        versions = [ctx.version(ctx.runtime.catalog.get(m)) for m in route.models(body, settings)]
        cache_key = None
        if route.cacheable(body):
            cache_key, hit = ctx.cached("task", route.name, versions, body.model_dump(mode="json"))
            if hit is not None:
                return Response(hit, media_type="application/json")
        if route.batched is not None:
            b = route.batched
            runtime = ctx.runtime

            def run_batch(items: list[Any], template: Any = body) -> Sequence[Any]:
                return b.run(items, template, runtime)

            batcher = ctx.batchers.get((route.name, b.key(body, settings)), run_batch)
            results = await batcher.submit(list(b.items(body)))
            result = b.answer(body, results)
        else:
            assert route.call is not None
            result = await ctx.run(route.call, body, ctx.runtime)
        payload = route.response.model_validate(to_jsonable(result)).model_dump(mode="json")
        if cache_key is not None:
            return Response(ctx.remember(cache_key, payload), media_type="application/json")
        return Response(_dumps(payload), media_type="application/json")

    # FastAPI reads the signature for the body model, the dependencies and the OpenAPI document.
    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=route.request),
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ServerContext,
                          default=Depends(get_context)),
        inspect.Parameter("key", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=Depends(require(route.scope))),
    ], return_annotation=Response)
    endpoint.__name__ = route.name
    return endpoint


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def add_task_routes(router: APIRouter, routes: Sequence[TaskRoute] | None = None) -> list[str]:
    """Add a route per task whose module exists; returns the names added."""
    added = []
    for route in TASK_ROUTES if routes is None else routes:
        if not available(route):
            continue
        router.add_api_route(f"/v1/{route.name}", _endpoint(route), methods=["POST"],
                             response_model=route.response, responses=ERRORS, summary=route.summary or None,
                             tags=["Tasks"], name=route.name)
        added.append(route.name)
    return added


def build_router(routes: Sequence[TaskRoute] | None = None) -> tuple[APIRouter, list[str]]:
    router = APIRouter()
    return router, add_task_routes(router, routes)


# The tasks --------------------------------------------------------------------------------------------
# Each entry below is the whole server side of a task. An entry whose module is still missing is
# harmless: its route appears when plait.tasks.<module> does.
