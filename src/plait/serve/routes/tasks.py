"""Task routes: ``POST /v1/<task>`` for every task of the task registry, generated from it.

A route's body is the task's own request model (so the OpenAPI document shows it), its answer the task's
one JSON form (:meth:`plait.tasks.registry.Task.to_json`), the same JSON the CLI's ``--json`` prints and
workflows store. Only HTTP concerns live here: the key's scope, the response cache, the micro-batcher a
batching task shares across concurrent requests, the generation queue a task that calls a chat model
waits in (streamed or not), and server-sent events when a streaming task is asked to stream
(``"stream": true``): the task's events, then ``{"type": "delta", "text"}`` for each piece, then
``{"type": "result", ...}`` and ``[DONE]``.

A task whose optional library is missing gets no route (the task itself says what to install when
used); a unit test loads every built-in task so a broken definition fails CI instead.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, create_model
from pydantic.json_schema import SkipJsonSchema

from plait.errors import PlaitError
from plait.models.base import Delta
from plait.serve.context import ServerContext
from plait.serve.deps import get_context, require
from plait.serve.errors import body_for, from_plait_error
from plait.serve.generation import LiveGeneration, model_turn, start_generation, stream_response
from plait.serve.openai_schema import ERRORS
from plait.tasks.registry import Streamed, Task, TaskContext, registry, server_path_fields

log = logging.getLogger("plait.serve")


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _sse(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8") + b"\n\n"


def _body_model(task: Task) -> type[BaseModel]:
    """The task's request, plus ``stream`` for a task that can stream (an HTTP concern, not the task's),
    without the fields that name a file or folder on the server (only null is accepted for them)."""
    refused = (Annotated[None, SkipJsonSchema()], Field(None, description="not settable over HTTP"))
    fields: dict[str, Any] = {name: refused for name in server_path_fields(task.request)}
    if task.stream is not None:
        fields["stream"] = (bool, Field(False, description="answer as server-sent events"))
    if not fields:
        return task.request
    return create_model(f"{task.request.__name__}Http", __base__=task.request, **fields)


def _finishing(streamed: Streamed, finish: Callable[[Any], None] | None) -> Iterator[Delta]:
    """The stream's deltas, then ``finish(result)`` unless it failed before its first delta."""
    answered = failed = False
    try:
        for delta in streamed:
            answered = True
            yield delta
    except Exception:
        failed = not answered
        raise
    finally:
        if finish is not None and not failed:
            finish(streamed.result())


async def answer_streamed(task: Task, http: Request, body: Any, ctx: ServerContext, key: Any, *, stream: bool,
                          finish: Callable[[Any], None] | None = None) -> Response:
    """Run a streaming task: as server-sent events when the request asks to stream, else one JSON answer.

    ``finish(result)`` runs in the worker once the task's stream has ended, however it ended (done, stopped
    by the client leaving, failed part-way): a caller that keeps the answer (a conversation) keeps what there
    was. It does not run when there was no answer at all: the request was refused before the stream began
    (unknown model, full queue, client gone while waiting) or the stream failed before its first piece (a
    prompt longer than the model's context), so the caller is told by the error and keeps nothing.
    """
    assert task.stream is not None
    streamed: Streamed = await ctx.run(task.stream, body, TaskContext(ctx.runtime))

    def produce() -> Iterator[Delta]:
        return _finishing(streamed, finish)

    live: LiveGeneration | None = None
    if streamed.model is not None and streamed.request is not None:  # a model call: take a turn in its queue
        live = await start_generation(ctx, http, key.id, streamed.model, streamed.request, produce=produce)
    if not stream:
        if live is not None:
            await live.collect(http)
        else:
            await ctx.run(lambda: list(produce()))
        return Response(_dumps(task.to_json(streamed.result())), media_type="application/json")

    async def events() -> AsyncIterator[bytes]:
        for event in streamed.events():
            yield _sse(event)
        try:
            if live is not None:
                async for delta in live.deltas():
                    if delta.text:
                        yield _sse({"type": "delta", "text": delta.text})
            else:
                for delta in produce():  # nothing for a model to do (ask found no source): no queue
                    yield _sse({"type": "delta", "text": delta.text})
        except PlaitError as exc:
            yield _sse(body_for(http.url.path, from_plait_error(exc)))
            return
        yield _sse({"type": "result", **task.to_json(streamed.result())})
        yield b"data: [DONE]\n\n"

    if live is None:
        return StreamingResponse(events(), media_type="text/event-stream")
    return stream_response(live, events(), "text/event-stream")


def _generating(models: Sequence[str | None], ctx: ServerContext) -> str | None:
    """The model among a task's that generates text (whose queue the task waits in), if any."""
    for name in filter(None, models):
        if {"chat", "complete"} & set(ctx.runtime.catalog.get(name).capabilities):
            return name
    return None


def _endpoint(task: Task) -> Callable[..., Any]:
    async def endpoint(http: Request, body: Any, ctx: ServerContext, key: Any) -> Response:
        if task.stream is not None:
            return await answer_streamed(task, http, body, ctx, key, stream=body.stream)
        versions = [ctx.version(ctx.runtime.catalog.get(m)) for m in task.models(body, ctx.settings) if m]
        cache_key = None
        if task.cacheable(body):
            cache_key, hit = ctx.cached("task", task.name, versions, body.model_dump(mode="json"))
            if hit is not None:
                return Response(hit, media_type=task.media_type)
        if task.batch is not None:
            batch, runtime = task.batch, ctx.runtime
            batcher = ctx.batchers.get((task.name, batch.key(body)), lambda: batch.runner(body, runtime))
            result = batch.answer(body, await batcher.submit(list(batch.items(body))))
        else:
            async with model_turn(ctx, http, key.id, _generating(task.models(body, ctx.settings), ctx)):
                result = await ctx.run(task.run, body, TaskContext(ctx.runtime))
        content = task.render(result) if task.render else _dumps(task.to_json(result))
        if cache_key is not None:
            ctx.cache.put(cache_key, content)
        return Response(content, media_type=task.media_type)

    # FastAPI reads the signature for the body model, the dependencies and the OpenAPI document.
    endpoint.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter("http", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=_body_model(task)),
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=ServerContext,
                          default=Depends(get_context)),
        inspect.Parameter("key", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=Depends(require(task.scope))),
    ], return_annotation=Response)
    endpoint.__name__ = task.name
    return endpoint


def describe_task(task: Task) -> dict[str, Any]:
    """What a program (the web page's forms) needs to offer a task: its request's JSON Schema and how to send it."""
    return {"name": task.name, "summary": task.summary, "scope": task.scope, "input": task.input,
            "file_input": task.file_input, "streams": task.stream is not None, "media_type": task.media_type,
            "request": _form_schema(task)}


def _form_schema(task: Task) -> dict[str, Any]:
    """The request's JSON Schema without the fields an HTTP request may not set."""
    schema = task.request.model_json_schema()
    for name in server_path_fields(task.request):
        schema.get("properties", {}).pop(name, None)
    return schema


def build_router(tasks: Sequence[Task] | None = None) -> tuple[APIRouter, list[str]]:
    """A router with ``POST /v1/<name>`` for each task (default: every task of the registry); returns it
    and the names routed."""
    router = APIRouter(tags=["Tasks"])
    chosen = registry().all() if tasks is None else list(tasks)

    @router.get("/v1/tasks", summary="Every task: its request's JSON Schema, scope and whether it streams",
                dependencies=[Depends(require("chat"))], responses=ERRORS)
    async def list_tasks() -> list[dict[str, Any]]:
        return [describe_task(task) for task in chosen]

    added = []
    for task in chosen:
        responses: dict[int | str, dict[str, Any]] = dict(ERRORS)
        if task.render is not None:
            responses[200] = {"content": {task.media_type: {}}, "description": "the result"}
        elif task.stream is not None:
            responses[200] = {"content": {"application/json": {}, "text/event-stream": {}},
                              "description": "the result as JSON, or server-sent events when stream is true"}
        router.add_api_route(f"/v1/{task.name}", _endpoint(task), methods=["POST"],
                             response_model=None if task.render else task.response_type,
                             responses=responses, summary=task.summary, name=task.name)
        added.append(task.name)
    return router, added
