"""/v1/ask: an answer from the personal index with cited sources, whole or streamed (server-sent events:
a ``sources`` event, then ``delta`` events, then the final ``answer``)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from plait.errors import PlaitError
from plait.serve.context import ServerContext
from plait.serve.errors import body_for, from_plait_error
from plait.serve.generation import start_generation, stream_response
from plait.serve.routes.tasks import TaskSpec


def declare() -> TaskSpec:
    from plait.index.filters import SearchFilters
    from plait.models.base import GenerationOptions
    from plait.tasks.ask import PASSAGES, Answer, AnswerStream, ask_stream

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        question: str = Field(min_length=1, max_length=4000)
        k: int = Field(PASSAGES, ge=1, le=20, description="passages to consider")
        filters: SearchFilters | None = None
        model: str | None = Field(None, description="chat model (default: the chat_model setting)")
        max_tokens: int | None = Field(None, ge=1, le=4096)
        stream: bool = False

    def sse(payload: Any) -> bytes:
        return b"data: " + json.dumps(payload, ensure_ascii=False, default=str).encode() + b"\n\n"

    async def handler(http: Request, body: AskRequest, ctx: ServerContext, key: Any) -> Response:
        options = GenerationOptions(max_tokens=body.max_tokens or 256, temperature=0.2)

        def retrieve() -> AnswerStream:
            return ask_stream(body.question, k=body.k, filters=body.filters, model=body.model, options=options,
                              runtime=ctx.runtime)

        answer_stream = await ctx.run(retrieve)
        if answer_stream.request is not None:  # the model will be asked: take a turn in its queue
            model = body.model or ctx.settings.chat_model
            live = await start_generation(ctx, http, key.id, model, answer_stream.request,
                                          produce=lambda: iter(answer_stream))
        else:
            live = None
        if not body.stream:
            if live is not None:
                await live.collect(http)
            return JSONResponse(asdict(answer_stream.answer))

        async def events() -> AsyncIterator[bytes]:
            yield sse({"type": "sources", "sources": [asdict(s) for s in answer_stream.sources]})
            try:
                if live is not None:
                    async for delta in live.deltas():
                        if delta.text:
                            yield sse({"type": "delta", "text": delta.text})
                else:
                    for delta in answer_stream:  # no relevant passage: the fixed answer, no model
                        yield sse({"type": "delta", "text": delta.text})
            except PlaitError as exc:
                yield sse(body_for(http.url.path, from_plait_error(exc)))
                return
            yield sse({"type": "answer", **asdict(answer_stream.answer)})
            yield b"data: [DONE]\n\n"

        if live is None:
            from starlette.responses import StreamingResponse

            return StreamingResponse(events(), media_type="text/event-stream")
        return stream_response(live, events(), "text/event-stream")

    return TaskSpec(AskRequest, Answer, scope="index", cacheable=lambda body: False, handler=handler, also_streams=True,
                    summary="Answer a question from the personal index, citing sources (stream: server-sent events)")
