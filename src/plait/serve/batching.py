"""Dynamic micro-batching: concurrent small requests run as one model call.

Each request hands its items (texts to embed, to classify…) to a :class:`MicroBatcher`. The batcher takes
the first waiting request, everything else already waiting, and whatever arrives within a short window,
up to ``max_batch`` items, then runs the whole batch in a worker thread and gives each request its own
rows back. While a batch runs, new requests queue up and form the next one, so under load batches grow
by themselves and with one client the window is the only added latency.

Up to ``in_flight`` batches run at once: while one batch's answers are being sent and the next is being
gathered, the model (several ONNX Runtime sessions, for instance) would otherwise sit idle.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_STOP: Any = object()


class _Retired(Exception):
    pass


@dataclass
class _Pending(Generic[T, R]):
    items: list[T]
    future: asyncio.Future[list[R]] = field(repr=False)


class MicroBatcher(Generic[T, R]):
    """Batches calls of ``run(items) -> results`` (one result per item, in order)."""

    def __init__(self, run: Callable[[list[T]], Sequence[R]], *, window: float, max_batch: int,
                 executor: Executor | None = None, on_batch: Callable[[int], None] | None = None,
                 in_flight: int = 1) -> None:
        self.run, self.window, self.max_batch = run, window, max(1, max_batch)
        self.executor, self.on_batch, self.in_flight = executor, on_batch, max(1, in_flight)
        self._queue: asyncio.Queue[_Pending[T, R]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, items: Sequence[T]) -> list[R]:
        if not items:
            return []
        if self._queue is None:
            self._queue = asyncio.Queue()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._loop(), name="plait-batcher")
        assert self._queue is not None
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(list(items), future))
        return await future

    def retire(self) -> None:
        """Stop once the requests already queued are answered (the pool has dropped this batcher)."""
        if self._queue is not None:
            self._queue.put_nowait(_STOP)

    async def close(self) -> None:
        for task in [self._worker, *self._running]:
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._worker = None
        self._running.clear()
        self._queue = None  # bound to this event loop; a restarted app gets a new one

    async def _gather(self) -> list[_Pending[T, R]]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        first = await self._queue.get()
        while first is _STOP:
            if self._queue.empty():
                raise _Retired
            first = self._queue.get_nowait()  # a request that came after the retirement is still answered
        batch = [first]
        size = len(first.items)
        deadline = loop.time() + self.window
        while size < self.max_batch:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                nxt = self._queue.get_nowait()
            if nxt is _STOP:
                self._queue.put_nowait(nxt)  # stop after this batch
                break
            batch.append(nxt)
            size += len(nxt.items)
        return batch

    async def _loop(self) -> None:
        slots = asyncio.Semaphore(self.in_flight)
        while True:
            await slots.acquire()
            try:
                batch = await self._gather()
            except _Retired:
                slots.release()
                for task in list(self._running):  # answer what is already running before stopping
                    await task
                return
            except BaseException:
                slots.release()
                raise
            # A caller that gave up (client gone) no longer needs its rows.
            live = [p for p in batch if not p.future.done()]
            if not live:
                slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._answer(live))
            self._running.add(task)

            def finished(done: asyncio.Task[None]) -> None:
                self._running.discard(done)
                slots.release()

            task.add_done_callback(finished)

    async def _answer(self, live: list[_Pending[T, R]]) -> None:
        items: list[T] = [item for p in live for item in p.items]
        if self.on_batch:
            self.on_batch(len(items))
        try:
            results = await asyncio.get_running_loop().run_in_executor(self.executor, self.run, items)
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, not swallowed
            for p in live:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        start = 0
        for p in live:
            part = list(results[start:start + len(p.items)])
            start += len(p.items)
            if not p.future.done():
                p.future.set_result(part)


class BatcherPool:
    """One batcher per key (model and kind, or task and labels), created on first use.

    Keys come from requests (a classification's label set), so the pool keeps at most ``max_batchers``
    and retires the least recently used one past that.
    """

    def __init__(self, *, window: float, max_batch: int, executor: Executor | None = None,
                 on_batch: Callable[[Any, int], None] | None = None, max_batchers: int = 256,
                 in_flight: int = 1) -> None:
        self.window, self.max_batch, self.executor, self.on_batch = window, max_batch, executor, on_batch
        self.max_batchers, self.in_flight = max_batchers, in_flight
        self._batchers: OrderedDict[Any, MicroBatcher[Any, Any]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_batch > 1

    def get(self, key: Any, make_run: Callable[[], Callable[[list[Any]], Sequence[Any]]]) -> MicroBatcher[Any, Any]:
        """The batcher for ``key``; ``make_run`` builds its batch function the first time."""
        batcher = self._batchers.get(key)
        if batcher is None:
            hook = (lambda n: self.on_batch(key, n)) if self.on_batch else None  # type: ignore[misc]
            batcher = self._batchers[key] = MicroBatcher(make_run(), window=self.window, max_batch=self.max_batch,
                                                         executor=self.executor, on_batch=hook,
                                                         in_flight=self.in_flight)
            while len(self._batchers) > self.max_batchers:
                _, old = self._batchers.popitem(last=False)
                old.retire()
        else:
            self._batchers.move_to_end(key)
        return batcher

    async def close(self) -> None:
        for batcher in list(self._batchers.values()):
            await batcher.close()
        self._batchers.clear()
