"""Ollama-compatible routes: /api/tags, /api/ps, /api/show, /api/version, /api/chat, /api/generate,
/api/embed (and the older /api/embeddings). Answers stream as NDJSON unless ``"stream": false``."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from plait import __version__
from plait.errors import ModelNotFound, PlaitError
from plait.models.base import GenerationRequest, TextGenerator
from plait.models.spec import ModelSpec
from plait.serve.cache import generation_is_cacheable
from plait.serve.context import ServerContext
from plait.serve.deps import ChatKey, Ctx
from plait.serve.errors import ApiError, body_for, from_plait_error
from plait.serve.generation import start_generation, stream_response
from plait.serve.ollama_schema import (
    ERRORS,
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    LegacyEmbeddingRequest,
    LegacyEmbeddingResponse,
    ModelDetails,
    Running,
    RunningModel,
    ShowRequest,
    ShowResponse,
    TagModel,
    Tags,
    Version,
)
from plait.tasks.generate import chat_request, prompt_request

router = APIRouter(tags=["Ollama-compatible"], responses=ERRORS)
NDJSON: dict[int | str, dict[str, Any]] = {200: {"content": {"application/x-ndjson": {}},
                "description": "one JSON object, or NDJSON lines while streaming"}}
CAPABILITY_NAMES = {"chat": "completion", "complete": "completion", "embed": "embedding"}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _resolve(ctx: ServerContext, name: str, capability: str) -> ModelSpec:
    # Ollama clients often add the default tag; plait's catalog names have no tags.
    try:
        return ctx.spec(name, capability, name)
    except ModelNotFound:
        if name.endswith(":latest"):
            return ctx.spec(name.removesuffix(":latest"), capability, name)
        raise


def _details(spec: ModelSpec) -> ModelDetails:
    fmt = {"llamacpp": "gguf", "onnx": "onnx", "openai": "remote"}.get(spec.backend, spec.backend)
    family = spec.name.split("-")[0].split("@")[0]
    return ModelDetails(parent_model=spec.parent or "", format=fmt, family=family, families=[family])


def _digest(ctx: ServerContext, spec: ModelSpec) -> str:
    return hashlib.sha256(ctx.version(spec).encode()).hexdigest()


def _tag(ctx: ServerContext, spec: ModelSpec) -> TagModel:
    return TagModel(name=spec.name, model=spec.name, modified_at=_now(), digest=_digest(ctx, spec),
                    size=spec.size_bytes(ctx.settings.models_dir) or 0, details=_details(spec))


@router.get("/api/version", response_model=Version)
async def version(key: ChatKey) -> Version:
    return Version(version=__version__)


@router.get("/api/tags", response_model=Tags)
async def tags(ctx: Ctx, key: ChatKey) -> Tags:
    specs = await ctx.run(ctx.runtime.catalog.all)
    return Tags(models=[await ctx.run(_tag, ctx, s) for s in specs])


@router.get("/api/ps", response_model=Running)
async def running(ctx: Ctx, key: ChatKey) -> Running:
    out = []
    for name in ctx.runtime.pool.loaded():
        try:
            spec = ctx.runtime.catalog.get(name)
        except ModelNotFound:
            continue
        tag = _tag(ctx, spec)
        out.append(RunningModel(name=tag.name, model=tag.model, size=tag.size, digest=tag.digest,
                                details=tag.details, expires_at=_now()))
    return Running(models=out)


@router.post("/api/show", response_model=ShowResponse)
async def show(body: ShowRequest, ctx: Ctx, key: ChatKey) -> ShowResponse:
    try:
        spec = ctx.runtime.catalog.get(body.model)
    except ModelNotFound:
        if not body.model.endswith(":latest"):
            raise
        spec = ctx.runtime.catalog.get(body.model.removesuffix(":latest"))
    caps = sorted({CAPABILITY_NAMES[c] for c in spec.capabilities if c in CAPABILITY_NAMES})
    params = f"temperature {ctx.settings.temperature}\nnum_predict {ctx.settings.max_tokens}"
    return ShowResponse(
        license=spec.license, modelfile=f"# plait catalog entry {spec.name}\nFROM {spec.source}\n",
        parameters=params, template="", details=_details(spec), capabilities=caps, modified_at=_now(),
        model_info={"general.name": spec.name, "general.description": spec.description,
                    "plait.backend": spec.backend, "plait.version": spec.version, "plait.source": spec.source},
    )


def _line(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _final_fields(started: float, prompt_tokens: int, completion_tokens: int, reason: str) -> dict[str, Any]:
    total = int((time.perf_counter() - started) * 1e9)
    return {"done": True, "done_reason": "stop" if reason == "cancelled" else reason, "total_duration": total,
            "load_duration": 0, "prompt_eval_count": prompt_tokens, "prompt_eval_duration": 0,
            "eval_count": completion_tokens, "eval_duration": total}


async def _answer(http: Request, ctx: ServerContext, key_id: str, spec: ModelSpec, request: GenerationRequest,
                  stream: bool, chat: bool) -> Response:
    started = time.perf_counter()
    options = request.options.with_defaults(ctx.settings.max_tokens, ctx.settings.temperature)
    field = "message" if chat else "response"

    def piece(text: str) -> Any:
        return {"role": "assistant", "content": text} if chat else text

    cache_key = None
    if not stream and generation_is_cacheable(options):
        cache_key, hit = ctx.cached("ollama", chat, ctx.version(spec), options, request.messages, request.prompt)
        if hit is not None:
            payload = json.loads(hit)
            payload["created_at"] = _now()
            return JSONResponse(payload)
    live = await start_generation(ctx, http, key_id, spec.name, request)
    if not stream:
        done = await live.collect(http)
        payload = {"model": spec.name, "created_at": _now(), field: piece(done.text),
                   **_final_fields(started, done.usage.prompt_tokens, done.usage.completion_tokens,
                                   done.finish_reason)}
        if cache_key is not None and done.finish_reason != "cancelled":
            ctx.remember(cache_key, payload)
        return JSONResponse(payload)

    async def lines() -> AsyncIterator[bytes]:
        try:
            async for delta in live.deltas():
                if delta.text:
                    yield _line({"model": spec.name, "created_at": _now(), field: piece(delta.text), "done": False})
                if delta.finish_reason:
                    usage = delta.usage
                    yield _line({"model": spec.name, "created_at": _now(), field: piece(""),
                                 **_final_fields(started, usage.prompt_tokens if usage else 0,
                                                 usage.completion_tokens if usage else 0, delta.finish_reason)})
        except PlaitError as exc:
            yield _line(body_for(http.url.path, from_plait_error(exc)))
        except Exception:
            yield _line({"error": "internal server error; see the server log"})
            raise

    return stream_response(live, lines(), "application/x-ndjson")


@router.post("/api/chat", response_model=ChatResponse, responses=NDJSON)
async def chat(body: ChatRequest, http: Request, ctx: Ctx, key: ChatKey) -> Response:
    spec = _resolve(ctx, body.model, "chat")
    if not body.messages:  # Ollama: an empty chat loads the model
        await ctx.run(ctx.runtime.pool.get, spec.name)
        return JSONResponse({"model": spec.name, "created_at": _now(), "message": {"role": "assistant",
                             "content": ""}, "done": True, "done_reason": "load"})
    model = await ctx.run(ctx.runtime.model, spec.name, TextGenerator)
    request = chat_request(model, [m.to_message() for m in body.messages],
                           options=body.generation_options(ctx.settings.context_length),
                           default_max_tokens=ctx.settings.max_tokens)
    return await _answer(http, ctx, key.id, spec, request, body.stream, chat=True)


@router.post("/api/generate", response_model=GenerateResponse, responses=NDJSON)
async def generate(body: GenerateRequest, http: Request, ctx: Ctx, key: ChatKey) -> Response:
    spec = _resolve(ctx, body.model, "complete")
    if not body.prompt:  # Ollama: an empty prompt loads (or with keep_alive 0, unloads) the model
        if body.keep_alive in (0, "0", "0s"):
            ctx.runtime.pool.unload(spec.name)
            reason = "unload"
        else:
            await ctx.run(ctx.runtime.pool.get, spec.name)
            reason = "load"
        return JSONResponse({"model": spec.name, "created_at": _now(), "response": "", "done": True,
                             "done_reason": reason})
    request = prompt_request(spec, body.prompt, raw=body.raw, system=body.system,
                             options=body.generation_options(ctx.settings.context_length))
    return await _answer(http, ctx, key.id, spec, request, body.stream, chat=False)


@router.post("/api/embed", response_model=EmbedResponse)
async def embed(body: EmbedRequest, ctx: Ctx, key: ChatKey) -> Response:
    started = time.perf_counter()
    spec = _resolve(ctx, body.model, "embed")
    texts = body.texts()
    cache_key, hit = ctx.cached("ollama-embed", ctx.version(spec), body.dimensions, texts)
    if hit is not None:
        return Response(hit, media_type="application/json")
    rows = await ctx.embed(spec.name, texts)
    vectors = [[float(x) for x in row] for row in rows]
    if body.dimensions is not None and vectors and body.dimensions != len(vectors[0]):
        raise ApiError(400, f"dimensions: model '{spec.name}' gives {len(vectors[0])}-dimensional vectors")
    tokens = await ctx.run(ctx.count_tokens, spec.name, texts)  # off the loop: the pool may reload the model
    payload = {"model": spec.name, "embeddings": vectors, "load_duration": 0,
               "total_duration": int((time.perf_counter() - started) * 1e9), "prompt_eval_count": tokens}
    return Response(ctx.remember(cache_key, payload), media_type="application/json")


@router.post("/api/embeddings", response_model=LegacyEmbeddingResponse)
async def embeddings(body: LegacyEmbeddingRequest, ctx: Ctx, key: ChatKey) -> LegacyEmbeddingResponse:
    spec = _resolve(ctx, body.model, "embed")
    rows = await ctx.embed(spec.name, [body.prompt])
    return LegacyEmbeddingResponse(embedding=[float(x) for x in rows[0]])
