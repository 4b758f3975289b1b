"""Conversations (the web page's chats), kept in SQLite: list, open, rename, delete, and reply.

``POST /v1/conversations/{id}/reply`` answers the person's turn with the ``chat`` task, streamed like the
task's own route; the turn and its answer are kept when the answer ends, also when it is stopped (as far as
it got), and neither when the request fails before any answer.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from plait.conversations import Conversation, Conversations
from plait.models.base import Completion, Message
from plait.serve.deps import ChatKey, Ctx
from plait.serve.routes.tasks import answer_streamed
from plait.tasks.generate import MAX_MESSAGES, MAX_PROMPT_CHARS
from plait.tasks.registry import get_task

# A database row's id: SQLite's integers stop at 2**63 - 1.
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]

router = APIRouter(tags=["Conversations"])


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field("", max_length=200)
    model: str | None = Field(None, max_length=200)
    system: str | None = Field(None, max_length=20_000)


class ConversationChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=200)
    model: str | None = Field(None, max_length=200)
    system: str | None = Field(None, max_length=20_000)


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="the person's next turn")
    model: str | None = Field(None, max_length=200, description="answer with this model (default: the "
                                                               "conversation's, else the chat_model setting)")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    stream: bool = True


def _json(conversation: Conversation) -> dict[str, Any]:
    return asdict(conversation)


@router.get("/v1/conversations")
async def list_conversations(ctx: Ctx, key: ChatKey) -> list[dict[str, Any]]:
    return [_json(c) for c in await ctx.run(Conversations(ctx.runtime.store).list)]


@router.post("/v1/conversations", status_code=201)
async def new_conversation(body: NewConversation, ctx: Ctx, key: ChatKey) -> dict[str, Any]:
    made = await ctx.run(lambda: Conversations(ctx.runtime.store).create(title=body.title, model=body.model,
                                                                         system=body.system))
    return _json(made)


@router.get("/v1/conversations/{conversation_id}")
async def get_conversation(conversation_id: RowId, ctx: Ctx, key: ChatKey) -> dict[str, Any]:
    return _json(await ctx.run(Conversations(ctx.runtime.store).get, conversation_id))


@router.patch("/v1/conversations/{conversation_id}")
async def change_conversation(conversation_id: RowId, body: ConversationChange, ctx: Ctx,
                              key: ChatKey) -> dict[str, Any]:
    changed = await ctx.run(lambda: Conversations(ctx.runtime.store).update(
        conversation_id, title=body.title, model=body.model, system=body.system))
    return _json(changed)


@router.delete("/v1/conversations/{conversation_id}", status_code=204)
async def delete_conversation(conversation_id: RowId, ctx: Ctx, key: ChatKey) -> Response:
    await ctx.run(Conversations(ctx.runtime.store).delete, conversation_id)
    return Response(status_code=204)


@router.post("/v1/conversations/{conversation_id}/reply")
async def reply(conversation_id: RowId, body: Reply, http: Request, ctx: Ctx, key: ChatKey) -> Response:
    """The person's turn, answered by the chat task (server-sent events when ``stream``, the default)."""
    store = Conversations(ctx.runtime.store)
    conversation = await ctx.run(store.get, conversation_id)
    model = body.model or conversation.model or ctx.settings.chat_model
    chat = get_task("chat")
    request = chat.parse({"messages": _recent(conversation.history(), body.content), "model": model,
                          "temperature": body.temperature, "max_tokens": body.max_tokens})

    def keep(answer: Completion) -> None:
        # The person's turn is kept with its answer, not before: a reply refused before it began (full
        # queue, unknown model) leaves no unanswered turn behind, and its retry does not add a second one.
        store.add_exchange(conversation_id, body.content, answer.text, model=answer.model or model,
                           stopped=answer.finish_reason == "cancelled")

    return await answer_streamed(chat, http, request, ctx, key, stream=body.stream, finish=keep)


def _recent(history: list[Message], question: str) -> list[dict[str, str]]:
    """The system prompt, the newest turns within the chat task's limits, and the question: a long
    conversation goes on (the model keeps only what fits its context window anyway)."""
    system = [m for m in history if m.role == "system"]
    budget = MAX_PROMPT_CHARS - len(question) - sum(len(m.content) for m in system)
    room = MAX_MESSAGES - 1 - len(system)
    kept: list[Message] = []
    for m in reversed([m for m in history if m.role != "system"]):
        if len(kept) == room or len(m.content) > budget:
            break
        kept.append(m)
        budget -= len(m.content)
    return [{"role": m.role, "content": m.content} for m in [*system, *reversed(kept)]] + \
        [{"role": "user", "content": question}]
