"""One plait model as a Ray Serve deployment: what each replica runs (``plait serve --ray``).

A replica loads its model once from a :class:`~plait.distributed.shipping.Shipment` (this machine's
settings and model files) and answers the ``rayserve`` backend (:mod:`plait.models.rayserve`):

- ``embed`` and ``classify`` are ``@serve.batch`` methods: concurrent calls (from one plait server's
  threads, or several) are gathered into one model call, up to ``batch_max`` texts or ``batch_window_ms``,
  the same settings plait's own server batches with (changed live through the deployment's user_config);
- ``generate`` streams deltas; one answer at a time per replica (a llama.cpp model is not re-entrant),
  more replicas for more at once;
- ``info`` says what the model is (its interfaces, dimensions, labels) and which process serves it.

The model runs in a thread so the replica's event loop keeps taking requests (and cancellations) while
it computes. This module imports Ray Serve: it is loaded only where Ray is used.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from plait.distributed.pool import Worker
from ray import serve

if TYPE_CHECKING:
    import numpy as np

    from plait.distributed.shipping import Shipment
    from plait.models.base import GenerationRequest

DEFAULT_BATCH_MAX = 64
DEFAULT_WINDOW_S = 0.003


def request_payload(request: GenerationRequest) -> dict[str, Any]:
    """A generation request as plain data (its cancel event stays with the caller)."""
    from dataclasses import asdict

    return {"messages": [[m.role, m.content] for m in request.messages] if request.messages is not None else None,
            "prompt": request.prompt, "options": asdict(request.options)}


def request_from(payload: dict[str, Any], cancel: threading.Event) -> GenerationRequest:
    from plait.models.base import GenerationOptions, GenerationRequest, Message

    options = dict(payload["options"])
    options["stop"] = tuple(options.get("stop") or ())
    messages = payload.get("messages")
    return GenerationRequest(messages=tuple(Message(r, c) for r, c in messages) if messages is not None else None,
                             prompt=payload.get("prompt"), options=GenerationOptions(**options), cancel=cancel)


def _keep_replica_on_loopback() -> None:
    """On a Ray instance bound to loopback, make the replica's own gRPC server (Serve's inter-deployment
    channel, which plait does not use) listen on 127.0.0.1 too: Serve binds it to every interface. Patched
    here, before Serve starts it, because Serve has no setting for it; a Ray without that hook is left as
    it is."""
    from ray.serve._private import replica

    import ray

    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or not ray.util.get_node_ip_address().startswith("127."):
        return

    def loopback(server: Any, address: str) -> int:
        return int(original(server, address.replace("[::]", "127.0.0.1")))

    replica.add_port_to_grpc_server = loopback


class ModelReplica(Worker):
    def __init__(self, shipment: Shipment, name: str) -> None:
        _keep_replica_on_loopback()
        super().__init__(shipment)
        self.name = name
        self.model = self.runtime.pool.get(name)
        self._generating = asyncio.Lock()

    def reconfigure(self, config: dict[str, Any]) -> None:
        """The deployment's user_config: batching of ``embed`` and ``classify``."""
        size = int(config.get("batch_max", DEFAULT_BATCH_MAX))
        wait = float(config.get("batch_window_ms", DEFAULT_WINDOW_S * 1000)) / 1000
        batched: list[Any] = [self.embed, self.classify]
        for method in batched:
            method.set_max_batch_size(size)
            method.set_batch_wait_timeout_s(wait)

    def info(self) -> dict[str, Any]:
        from plait.models.base import Embedder, TextGenerator
        from plait.tasks.classifiers import Classifier

        m = self.model
        out: dict[str, Any] = {**super().info(), "name": self.name, "interfaces": []}
        if isinstance(m, TextGenerator):
            out["interfaces"].append("generate")
            out["context_length"] = m.context_length
        if isinstance(m, Embedder):
            out["interfaces"].append("embed")
            out["dimensions"] = m.dimensions
        if isinstance(m, Classifier):
            out["interfaces"].append("classify")
            out.update(labels=list(m.labels), multi_label=m.multi_label, threshold=m.threshold)
        return out

    @serve.batch(max_batch_size=DEFAULT_BATCH_MAX, batch_wait_timeout_s=DEFAULT_WINDOW_S)
    async def embed(self, calls: list[tuple[list[str], str]]) -> list[np.ndarray]:
        """Each call is (texts, kind); one model call per kind for the whole batch."""
        out: list[Any] = [None] * len(calls)
        for kind in {k for _, k in calls}:
            mine = [i for i, (_, k) in enumerate(calls) if k == kind]
            texts = [t for i in mine for t in calls[i][0]]
            vectors = await asyncio.to_thread(self.model.embed_many, texts, kind)  # type: ignore[attr-defined]
            start = 0
            for i in mine:
                n = len(calls[i][0])
                out[i] = vectors[start:start + n]
                start += n
        return out

    @serve.batch(max_batch_size=DEFAULT_BATCH_MAX, batch_wait_timeout_s=DEFAULT_WINDOW_S)
    async def classify(self, calls: list[tuple[list[str], float | None]]) -> list[Any]:
        """Each call is (texts, threshold); one ``predict_proba`` for the whole batch, decided per call."""
        texts = [t for call in calls for t in call[0]]
        probabilities = await asyncio.to_thread(self.model.predict_proba, texts)  # type: ignore[attr-defined]
        out, start = [], 0
        for call_texts, threshold in calls:
            rows = probabilities[start:start + len(call_texts)]
            start += len(call_texts)
            cut = threshold if threshold is not None else self.model.threshold  # type: ignore[attr-defined]
            out.append([self.model.decide(row, cut) for row in rows])  # type: ignore[attr-defined]
        return out

    async def predict_proba(self, texts: list[str]) -> np.ndarray:
        return await asyncio.to_thread(self.model.predict_proba, texts)  # type: ignore[attr-defined]

    async def count_tokens(self, text: str) -> int:
        return int(self.model.count_tokens(text))  # type: ignore[attr-defined]

    async def generate(self, payload: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Stream one answer as {"text", "finish_reason", "usage"} pieces; stops when the caller cancels."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()
        request = request_from(payload, cancel)

        def produce() -> None:
            try:
                for delta in self.model.stream(request):  # type: ignore[attr-defined]
                    loop.call_soon_threadsafe(queue.put_nowait, delta)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller as the stream's error
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        async with self._generating:
            producer = loop.run_in_executor(None, produce)
            try:
                while (item := await queue.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    usage = [item.usage.prompt_tokens, item.usage.completion_tokens] if item.usage else None
                    yield {"text": item.text, "finish_reason": item.finish_reason, "usage": usage}
            finally:
                cancel.set()  # the caller went away (or the answer is over): stop generating
                await producer

    def pid(self) -> int:
        return os.getpid()
