"""Everything one app's routes share: the runtime, keys, limits, cache, batchers, queue and metrics.

One :class:`ServerContext` per app (``app.state.ctx``), built by :func:`plait.serve.app.create_app`; no
module-level state, so two apps (tests, benchmarks) in one process are independent.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from plait.errors import CapabilityError
from plait.models.base import Embedder
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from plait.security.audit import AuditLog
from plait.security.backoff import AuthBackoff
from plait.serve.auth import KeyStore
from plait.serve.batching import BatcherPool
from plait.serve.cache import ResponseCache, cache_key, model_version
from plait.serve.jobs import Jobs
from plait.serve.metrics import Metrics
from plait.serve.queue import GenerationQueue
from plait.serve.ratelimit import RateLimiter
from plait.settings import Settings

T = TypeVar("T")


class ServerContext:
    def __init__(self, settings: Settings, runtime: Runtime) -> None:
        self.settings, self.runtime = settings, runtime
        self.keys = KeyStore(runtime.store)
        self.limiter = RateLimiter()
        self.metrics = Metrics()
        self.cache = ResponseCache(settings.cache_entries, settings.cache_ttl_seconds)
        self.queue = GenerationQueue(settings.generation_queue, on_depth=self._depth)
        self.jobs = Jobs()
        self.backoff = AuthBackoff()
        self.audit: AuditLog | None = None
        self.open()

    def open(self) -> None:
        """Start the worker threads (again, after :meth:`close`: an app may be started more than once)."""
        settings = self.settings
        # Generation threads mostly wait on llama.cpp (which releases the GIL); one per answer in flight.
        self.generation_pool = ThreadPoolExecutor(max(8, 2 * settings.generation_slots),
                                                  thread_name_prefix="plait-generate")
        # Embedding, classification and other task work.
        self.work_pool = ThreadPoolExecutor(max(4, settings.threads * 2), thread_name_prefix="plait-work")
        # Two batches in flight per model: one running while the next gathers and the last is answered.
        self.batchers = BatcherPool(window=settings.batch_window_ms / 1000, max_batch=settings.batch_max,
                                    executor=self.work_pool, on_batch=self.metrics.observe_batch, in_flight=2)
        if self.audit is None:
            self.audit = AuditLog(self.runtime.store, on_alert=self.metrics.observe_alert)
        self.closing = False

    def _depth(self, model: str, depth: int) -> None:
        self.metrics.queue_depth.labels(model=model).set(depth)

    def spec(self, name: str | None, capability: str, default: str) -> ModelSpec:
        """The catalog entry for a request's model, checked for the capability without loading it."""
        spec = self.runtime.catalog.get(name or default)
        if capability not in spec.capabilities:
            can = ", ".join(spec.capabilities)
            raise CapabilityError(f"model '{spec.name}' cannot {capability} (it can: {can}); "
                                  "see /v1/models for the models and what they do")
        return spec

    def slots(self, model: str) -> int:
        """Answers ``model`` generates at once: a llama.cpp model's slots; one for other backends."""
        spec = self.runtime.catalog.get(model)
        if spec.backend != "llamacpp":
            return 1
        from plait.models.llamacpp import slots

        return slots(spec, self.settings)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (a model call, a database query) off the event loop.

        The worker runs in a copy of the caller's context, so what it does is noted on the request's audit
        record (run_in_executor alone does not carry context variables to the thread)."""
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.work_pool, context.run, fn, *args)

    async def embed(self, model: str, texts: Sequence[str], kind: str = "document") -> list[Any]:
        """Embeddings of ``texts`` (unit rows), micro-batched with other requests for the same model."""
        runtime = self.runtime

        def run(batch: list[str]) -> Any:
            # Resolved on every batch: the pool may have unloaded and reloaded the model meanwhile.
            return runtime.model(model, Embedder).embed_many(batch, kind=kind)  # type: ignore[arg-type]

        if not self.batchers.enabled:
            self.metrics.observe_batch((model,), len(texts))
            return list(await self.run(run, list(texts)))
        return await self.batchers.get((model, kind), lambda: run).submit(list(texts))

    def count_tokens(self, model: str, texts: Sequence[str]) -> int:
        """Tokens an embedder read, from its own tokenizer when it has one (else a word count, an estimate).
        Blocking (it tokenises, and may load the model): routes call it through :meth:`run`."""
        tokenizer = getattr(self.runtime.model(model, Embedder), "tokenizer", None)
        if tokenizer is not None and hasattr(tokenizer, "encode_batch"):
            return int(sum(sum(e.attention_mask) for e in tokenizer.encode_batch(list(texts))))
        return sum(len(t.split()) for t in texts)

    def cached(self, *parts: Any) -> tuple[str, bytes | None]:
        key = cache_key(*parts)
        value = self.cache.get(key) if self.cache.enabled else None
        if self.cache.enabled:
            self.metrics.cache.labels(result="hit" if value is not None else "miss").inc()
        return key, value

    def remember(self, key: str, payload: Any) -> bytes:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.cache.put(key, body)
        return body

    def version(self, spec: ModelSpec) -> str:
        return model_version(spec)

    async def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        await self.batchers.close()
        # By now every answer in flight has finished or been cancelled (uvicorn's graceful shutdown), which
        # sets its cancel flag; the generation threads stop at their next token. Wait for them, so no model
        # is closed under a thread still using it.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(self.generation_pool.shutdown, wait=True,
                                                           cancel_futures=True))
        self.work_pool.shutdown(wait=False, cancel_futures=True)
        if self.audit is not None:
            audit, self.audit = self.audit, None
            await loop.run_in_executor(None, audit.close)
