"""Generation for the HTTP routes: queued, streamed from a worker thread, stopped when the client leaves.

A :class:`LiveGeneration` takes a place in the model's queue (429 when full), waits for its turn, runs
``TextGenerator.stream`` in a worker thread and hands each delta to the event loop. ``start`` returns once
the first piece of output (or an error) exists, so a route can still answer with a proper status code
when the prompt is too long or the model fails to load; after that the answer streams.

While the request waits (in the queue, or for a non-streamed answer) the client's connection is watched:
a client that disconnects sets ``GenerationRequest.cancel``, which stops llama.cpp at the next token, and
gives its turn back.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import Request

from plait.errors import InputError
from plait.models.base import Completion, Delta, GenerationRequest, TextGenerator, Usage
from plait.serve.context import ServerContext
from plait.serve.errors import ApiError, ClientGone
from plait.serve.queue import QueueFull, Ticket
from plait.serve.ratelimit import retry_after_header

T = TypeVar("T")
_END = object()
POLL_SECONDS = 0.1


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class LiveGeneration:
    def __init__(self, ctx: ServerContext, model: str, request: GenerationRequest, client: str,
                 produce: Callable[[], Iterator[Delta]] | None = None) -> None:
        # ``produce`` replaces the plain model call for a task that generates (ask: retrieval, then the
        # model's stream); it runs in the worker thread and must honour ``request.cancel``.
        self.ctx, self.model, self.request, self.client, self.produce = ctx, model, request, client, produce
        self._items: asyncio.Queue[Any] = asyncio.Queue()
        self._ticket: Ticket | None = None
        self._first: Any = None
        self._admitted = 0.0
        self._launched = False
        self.final: Delta | None = None

    async def start(self, http: Request) -> None:
        """Queue, wait for the turn and for the first output; raises 429/4xx/5xx errors or ClientGone."""
        self._ticket = admit(self.ctx, self.model, self.client)
        self._admitted = time.perf_counter()
        try:
            await guarded(self._ticket.wait(), http)
            self._launch()
            self._first = await guarded(self._items.get(), http)
        except BaseException:
            self.cancel()
            raise
        if isinstance(self._first, _Failure):
            raise self._first.exc

    def _launch(self) -> None:
        self._launched = True
        loop = asyncio.get_running_loop()
        ctx, model, request, items, produce = self.ctx, self.model, self.request, self._items, self.produce
        put = items.put_nowait

        def work() -> None:
            try:
                deltas = produce() if produce else ctx.runtime.model(model, TextGenerator).stream(request)
                for delta in deltas:
                    loop.call_soon_threadsafe(put, delta)
            except ValueError as exc:
                # Backends raise ValueError for requests they cannot run (a JSON schema llama.cpp cannot
                # turn into a grammar, a prompt longer than the context): the client's problem, a 400.
                loop.call_soon_threadsafe(put, _Failure(InputError(f"model '{model}' cannot run this request: {exc}")))
            except BaseException as exc:  # noqa: BLE001 - handed over to the request's task
                loop.call_soon_threadsafe(put, _Failure(exc))
            finally:
                loop.call_soon_threadsafe(put, _END)

        # In a copy of the request's context: a remote backend notes what it sent on the request's audit record.
        future = loop.run_in_executor(ctx.generation_pool, contextvars.copy_context().run, work)
        ticket = self._ticket
        assert ticket is not None
        # The turn ends when the thread does (not when the client leaves), so the next request never
        # contends with a generation that is still stopping.
        future.add_done_callback(lambda _: ctx.queue.release_threadsafe(ticket))

    def cancel(self) -> None:
        self.request.cancel.set()
        if self._ticket is not None and not self._launched:
            self._ticket.release()  # waiting, or granted but never started: give the turn back

    async def deltas(self) -> AsyncIterator[Delta]:
        """The output, piece by piece (the first was fetched by ``start``). Raises the model's errors."""
        item = self._first
        first = True
        try:
            while item is not _END:
                if isinstance(item, _Failure):
                    raise item.exc
                delta: Delta = item
                if first and delta.text:
                    self.ctx.metrics.ttft.labels(model=self.model).observe(time.perf_counter() - self._admitted)
                    first = False
                if delta.finish_reason:
                    self.final = delta
                    self._count(delta.usage)
                yield delta
                item = await self._items.get()
        finally:
            self.cancel()  # a no-op when the generation finished

    async def collect(self, http: Request) -> Completion:
        """The whole answer, stopping early if the client disconnects."""
        async def gather() -> Completion:
            parts = [d.text async for d in self.deltas()]
            final = self.final or Delta("", finish_reason="stop", usage=Usage(0, 0))
            return Completion("".join(parts), final.finish_reason or "stop", final.usage or Usage(0, 0))

        return await guarded(gather(), http)

    def _count(self, usage: Usage | None) -> None:
        if usage:
            self.ctx.metrics.tokens.labels(model=self.model, kind="prompt").inc(usage.prompt_tokens)
            self.ctx.metrics.tokens.labels(model=self.model, kind="completion").inc(usage.completion_tokens)


def admit(ctx: ServerContext, model: str, client: str) -> Ticket:
    """A place in the model's queue; 429 with Retry-After when it is full."""
    try:
        return ctx.queue.admit(model, client, ctx.slots(model))
    except QueueFull as exc:
        ctx.metrics.rejected.labels(model=model).inc()
        raise ApiError(429, str(exc), type="rate_limit_error", code="queue_full",
                       headers={"Retry-After": retry_after_header(exc.retry_after)}) from exc


async def guarded(awaitable: Awaitable[T], http: Request) -> T:
    """``awaitable``'s result, or ClientGone (and the awaitable cancelled) once the client disconnects."""
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
            if done:
                return task.result()
            if await http.is_disconnected():
                raise ClientGone
    finally:
        if not task.done():
            task.cancel()


@asynccontextmanager
async def model_turn(ctx: ServerContext, http: Request, client: str, model: str | None) -> AsyncIterator[None]:
    """A turn in ``model``'s generation queue for work that is not streamed (a task that calls the chat
    model and answers with one JSON body), so a client's summaries wait their turn beside everyone's chats
    instead of running past the queue. ``None``: no model that generates, no turn to take."""
    if model is None:
        yield
        return
    ticket = admit(ctx, model, client)
    try:
        await guarded(ticket.wait(), http)
        yield
    finally:
        ticket.release()


async def start_generation(ctx: ServerContext, http: Request, client: str, model: str,
                           request: GenerationRequest,
                           produce: Callable[[], Iterator[Delta]] | None = None) -> LiveGeneration:
    live = LiveGeneration(ctx, model, request, client, produce)
    await live.start(http)
    return live


def stream_response(live: LiveGeneration, chunks: AsyncIterator[bytes], media_type: str) -> Any:
    """A streamed answer that stops the generation however the response ends (done, error, disconnect)."""
    from starlette.responses import StreamingResponse

    class _Stream(StreamingResponse):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            try:
                await super().__call__(scope, receive, send)
            finally:
                live.cancel()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return _Stream(chunks, media_type=media_type, headers=headers)
