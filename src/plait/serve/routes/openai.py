"""OpenAI-compatible routes: /v1/models, /v1/chat/completions, /v1/completions, /v1/embeddings."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from plait.errors import PlaitError
from plait.models.base import GenerationOptions, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.serve.cache import generation_is_cacheable
from plait.serve.context import ServerContext
from plait.serve.deps import ChatKey, Ctx
from plait.serve.errors import ApiError, body_for, from_plait_error
from plait.serve.generation import LiveGeneration, start_generation, stream_response
from plait.serve.openai_schema import (
    ERRORS,
    ChatCompletion,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingList,
    EmbeddingRequest,
    ModelCard,
    ModelList,
    TextCompletion,
    finish_reason,
)
from plait.tasks.generate import chat_request, prompt_request

router = APIRouter(tags=["OpenAI-compatible"], responses=ERRORS)
SSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "JSON, or server-sent events when stream is true"}}


def _card(spec: ModelSpec) -> ModelCard:
    return ModelCard(id=spec.name, created=0, owned_by="plait" if spec.builtin else "user",
                     capabilities=list(spec.capabilities), description=spec.description)


@router.get("/v1/models", response_model=ModelList)
async def list_models(ctx: Ctx, key: ChatKey) -> ModelList:
    specs = await ctx.run(ctx.runtime.catalog.all)
    return ModelList(data=[_card(s) for s in specs])


@router.get("/v1/models/{model}", response_model=ModelCard)
async def get_model(model: str, ctx: Ctx, key: ChatKey) -> ModelCard:
    return _card(ctx.runtime.catalog.get(model))


def _effective(ctx: ServerContext, options: GenerationOptions) -> GenerationOptions:
    return options.with_defaults(ctx.settings.max_tokens, ctx.settings.temperature)


def _sse(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _generate(http: Request, ctx: ServerContext, key_id: str, spec: ModelSpec, request: GenerationRequest,
                    stream: bool, include_usage: bool, kind: str, echo: str | None = None) -> Response:
    """Shared by chat and plain completions: ``kind`` is "chat.completion" or "text_completion"; ``echo`` is
    the prompt to put before a completion's text (OpenAI's ``echo``)."""
    chat = kind == "chat.completion"
    options = _effective(ctx, request.options)
    cache_key = None
    if not stream and generation_is_cacheable(options):
        cache_key, hit = ctx.cached(kind, ctx.version(spec), options, request.messages, request.prompt, echo)
        if hit is not None:
            payload = json.loads(hit)
            payload.update(id=_new_id(chat), created=int(time.time()))
            return JSONResponse(payload)
    live = await start_generation(ctx, http, key_id, spec.name, request)
    ident, created, fingerprint = _new_id(chat), int(time.time()), ctx.version(spec)
    base = {"id": ident, "created": created, "model": spec.name, "system_fingerprint": fingerprint}
    if stream:
        return stream_response(live, _stream(http, live, base, chat, include_usage, echo), "text/event-stream")
    done = await live.collect(http)
    usage = _usage(done.usage)
    if chat:
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": done.text},
                                  "finish_reason": finish_reason(done.finish_reason), "logprobs": None}
    else:
        text = (echo or "") + done.text
        choice = {"index": 0, "text": text, "finish_reason": finish_reason(done.finish_reason), "logprobs": None}
    payload = {**base, "object": kind, "choices": [choice], "usage": usage}
    if cache_key is not None and done.finish_reason != "cancelled":
        ctx.remember(cache_key, payload)
    return JSONResponse(payload)


def _usage(u: Usage) -> dict[str, Any]:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
            "total_tokens": u.total_tokens, "prompt_tokens_details": {"cached_tokens": u.cached_tokens}}


def _new_id(chat: bool) -> str:
    return ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]


async def _stream(http: Request, live: LiveGeneration, base: dict[str, Any], chat: bool,
                  include_usage: bool, echo: str | None = None) -> AsyncIterator[bytes]:
    obj = "chat.completion.chunk" if chat else "text_completion"

    def chunk(text: str | None, finish: str | None, role: bool = False) -> dict[str, Any]:
        if chat:
            delta: dict[str, Any] = {"role": "assistant"} if role else {}
            if text is not None:
                delta["content"] = text
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        else:
            choice = {"index": 0, "text": text or "", "finish_reason": finish, "logprobs": None}
        return {**base, "object": obj, "choices": [choice]}

    if chat:
        yield _sse(chunk("", None, role=True))
    elif echo:
        yield _sse(chunk(echo, None))  # the prompt first, as the answer without stream has it
    try:
        async for delta in live.deltas():
            if delta.text:
                yield _sse(chunk(delta.text, None))
            if delta.finish_reason:
                yield _sse(chunk(None if chat else "", finish_reason(delta.finish_reason)))
                if include_usage and delta.usage:
                    u = delta.usage
                    yield _sse({**base, "object": obj, "choices": [], "usage": _usage(u)})
    except PlaitError as exc:
        # Headers are sent: report the failure in the stream, as OpenAI does, and end it.
        yield _sse(body_for(http.url.path, from_plait_error(exc)))
        return
    except Exception:
        yield _sse(body_for(http.url.path, ApiError(500, "internal server error; see the server log",
                                                    type="server_error")))
        raise
    yield b"data: [DONE]\n\n"


@router.post("/v1/chat/completions", response_model=ChatCompletion, responses=SSE)
async def chat_completions(body: ChatCompletionRequest, http: Request, ctx: Ctx, key: ChatKey) -> Response:
    spec = ctx.spec(body.model, "chat", ctx.settings.chat_model)
    model = await ctx.run(ctx.runtime.model, spec.name, TextGenerator)
    # A conversation longer than the context loses its oldest turns, as in `plait chat` (tasks.generate).
    request = chat_request(model, body.chat_messages(), options=body.options(),
                           default_max_tokens=ctx.settings.max_tokens)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await _generate(http, ctx, key.id, spec, request, body.stream, include_usage, "chat.completion")


@router.post("/v1/completions", response_model=TextCompletion, responses=SSE)
async def completions(body: CompletionRequest, http: Request, ctx: Ctx, key: ChatKey) -> Response:
    spec = ctx.spec(body.model, "complete", ctx.settings.chat_model)
    request = prompt_request(spec, body.prompt_text(), raw=body.raw, options=body.options())
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await _generate(http, ctx, key.id, spec, request, body.stream, include_usage, "text_completion",
                           echo=body.prompt_text() if body.echo else None)


@router.post("/v1/embeddings", response_model=EmbeddingList)
async def embeddings(body: EmbeddingRequest, ctx: Ctx, key: ChatKey) -> Response:
    import numpy as np

    spec = ctx.spec(body.model, "embed", ctx.settings.embed_model)
    texts = body.texts()
    cache_key, hit = ctx.cached("embeddings", ctx.version(spec), body.encoding_format, body.dimensions, texts)
    if hit is not None:
        return Response(hit, media_type="application/json")
    rows = await ctx.embed(spec.name, texts)
    vectors = np.asarray(rows, dtype=np.float32)
    if body.dimensions is not None and body.dimensions != vectors.shape[1]:
        raise ApiError(400, f"dimensions: model '{spec.name}' gives {vectors.shape[1]}-dimensional vectors; "
                       "omit dimensions or choose another model", param="dimensions")
    tokens = await ctx.run(ctx.count_tokens, spec.name, texts)  # off the loop: the pool may reload the model
    data = []
    for i, row in enumerate(vectors):
        value: Any = base64.b64encode(row.astype("<f4").tobytes()).decode() if body.encoding_format == "base64" \
            else row.tolist()
        data.append({"object": "embedding", "index": i, "embedding": value})
    payload = {"object": "list", "data": data, "model": spec.name,
               "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return Response(ctx.remember(cache_key, payload), media_type="application/json")

