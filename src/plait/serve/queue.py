"""The generation queue: bounded, fair between API keys, as many generations per model as it has slots.

A llama.cpp model decodes a few requests at once (its slots, continuous batching); requests beyond that
wait their turn here, where plait decides who goes next, rather than in llama.cpp's own first-come queue.
A free slot goes to the waiting API key with the fewest answers running, round-robin among equals: a
client that sends twenty requests does not make another client wait behind all twenty. When
``max_waiting`` requests already wait for a model, a new one is refused at once with :class:`QueueFull`
(HTTP 429), carrying an estimate of when to retry.

Everything here runs on the event loop's thread; ``Ticket.release`` may be called from a worker thread's
completion callback, which is marshalled back onto the loop.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


class QueueFull(Exception):
    def __init__(self, model: str, waiting: int, retry_after: float) -> None:
        super().__init__(f"{waiting} requests are already waiting for model '{model}'; "
                         f"retry in about {math.ceil(retry_after)} s")
        self.retry_after = retry_after


@dataclass(eq=False)
class Ticket:
    queue: _ModelQueue
    client: str
    turn: asyncio.Future[None] = field(repr=False)
    started: float = 0.0
    released: bool = False

    async def wait(self) -> None:
        """Until it is this request's turn. Cancelling the wait gives the place up."""
        try:
            await self.turn
        except asyncio.CancelledError:
            self.release()
            raise

    def release(self) -> None:
        """Give the turn (or the place in the queue) back; safe to call more than once."""
        if not self.released:
            self.released = True
            self.queue.done(self)


class _ModelQueue:
    def __init__(self, name: str, slots: int, max_waiting: int, on_depth: Callable[[str, int], None] | None) -> None:
        self.name, self.slots, self.max_waiting, self.on_depth = name, slots, max_waiting, on_depth
        self.running: set[Ticket] = set()
        self.waiting: dict[str, deque[Ticket]] = {}
        self.rotation: deque[str] = deque()  # clients with waiting tickets, next to serve first
        self.mean_seconds = 2.0  # running mean of a generation's duration, for Retry-After

    @property
    def depth(self) -> int:
        return sum(len(q) for q in self.waiting.values())

    def admit(self, client: str) -> Ticket:
        loop = asyncio.get_running_loop()
        ticket = Ticket(self, client, loop.create_future())
        if len(self.running) < self.slots and not self.rotation:
            self._start(ticket)
            return ticket
        depth = self.depth
        if depth >= self.max_waiting:
            raise QueueFull(self.name, depth, self.mean_seconds * (depth + 1) / self.slots)
        if client not in self.waiting:
            self.waiting[client] = deque()
            self.rotation.append(client)
        self.waiting[client].append(ticket)
        self._report()
        return ticket

    def _start(self, ticket: Ticket) -> None:
        ticket.started = time.monotonic()
        self.running.add(ticket)
        if not ticket.turn.done():
            ticket.turn.set_result(None)

    def done(self, ticket: Ticket) -> None:
        if ticket in self.running:
            self.running.discard(ticket)
            elapsed = time.monotonic() - ticket.started
            self.mean_seconds = 0.8 * self.mean_seconds + 0.2 * elapsed
        else:  # gave up while waiting
            queue = self.waiting.get(ticket.client)
            if queue and ticket in queue:
                queue.remove(ticket)
                if not queue:
                    del self.waiting[ticket.client]
                    self.rotation.remove(ticket.client)
        self._dispatch()

    def _next_client(self) -> str:
        """The waiting client with the fewest answers running (the longest waiting among equals): a free
        slot goes to whoever has least of the model now, not to whoever queued most."""
        running: dict[str, int] = {}
        for ticket in self.running:
            running[ticket.client] = running.get(ticket.client, 0) + 1
        client = min(self.rotation, key=lambda c: running.get(c, 0))  # min keeps the first of equals
        self.rotation.remove(client)
        return client

    def _dispatch(self) -> None:
        while len(self.running) < self.slots and self.rotation:
            client = self._next_client()
            queue = self.waiting[client]
            ticket = queue.popleft()
            if queue:
                self.rotation.append(client)  # its next request goes behind the other clients'
            else:
                del self.waiting[client]
            if ticket.turn.done():  # cancelled while waiting
                continue
            self._start(ticket)
        self._report()

    def _report(self) -> None:
        if self.on_depth:
            self.on_depth(self.name, self.depth)


class GenerationQueue:
    def __init__(self, max_waiting: int, *, slots: int = 1,
                 on_depth: Callable[[str, int], None] | None = None) -> None:
        self.max_waiting, self.slots, self.on_depth = max_waiting, slots, on_depth
        self._queues: dict[str, _ModelQueue] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def admit(self, model: str, client: str, slots: int | None = None) -> Ticket:
        """A place in ``model``'s queue for ``client``; raises :class:`QueueFull` when it is full.

        ``slots``: generations the model runs at once (default: the queue's); the latest value counts, so
        a changed setting applies from the next request on.
        """
        self._loop = asyncio.get_running_loop()
        queue = self._queues.get(model)
        if queue is None:
            queue = self._queues[model] = _ModelQueue(model, self.slots, self.max_waiting, self.on_depth)
        if slots is not None:
            queue.slots = slots
        return queue.admit(client)

    def release_threadsafe(self, ticket: Ticket) -> None:
        """Release from any thread (a generation thread's completion)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(ticket.release)

    def depth(self, model: str) -> int:
        queue = self._queues.get(model)
        return queue.depth if queue else 0
