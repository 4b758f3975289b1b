"""Whether a remote model server is up, and what answers when it is not.

A remote server (vLLM, Ollama, a hosted API: :mod:`plait.models.remote`) fails in a few ways: it refuses
connections, hangs, answers 5xx or 429, sends something that is not the JSON or event stream it should,
or drops a streamed answer half-way. Each of these is a :class:`ServerDown` (a 4xx such as a wrong key is
the request's fault, not the server's, and stays a plain BackendError).

:class:`Availability` is a circuit breaker per model entry: after a failure the server counts as down for
``retry_after`` seconds, during which requests fail at once instead of each waiting for a timeout; the
first request after that asks the server's health route (``GET /models``, short timeouts) before sending
anything heavy. :class:`WithFallback` answers generation requests with another catalog model (the entry's
``fallback`` option) while the server is down. Embeddings never fall back: vectors of another model are not
comparable with the ones already stored.

Timeouts (options of the entry): ``connect_timeout`` (default 5 s) to open a connection, ``timeout``
(default 120 s) of silence while waiting for an answer or its next piece.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.errors import BackendError
from plait.models.base import Completion, Delta, Embedder, EmbedKind, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec

if TYPE_CHECKING:
    import httpx
    import numpy as np

    from plait.models.loading import Models

log = logging.getLogger("plait.models")

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 120.0
RETRY_AFTER = 30.0
HEALTH_TIMEOUT = 3.0


class ServerDown(BackendError):
    """The server did not answer usefully (refused, timed out, 5xx/429, malformed or cut-off answer)."""


def timeouts(spec: ModelSpec) -> httpx.Timeout:
    import httpx

    read = float(spec.options.get("timeout", READ_TIMEOUT))
    return httpx.Timeout(read, connect=float(spec.options.get("connect_timeout", CONNECT_TIMEOUT)))


@dataclass(frozen=True)
class Health:
    ok: bool
    seconds: float
    detail: str
    models: tuple[str, ...] = ()  # what the server says it serves


class Availability:
    """Up, or down until a moment; thread-safe (a server's requests come from many threads)."""

    def __init__(self, spec: ModelSpec, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = spec.source
        self.retry_after = float(spec.options.get("retry_after", RETRY_AFTER))
        self.clock = clock
        self._lock = threading.Lock()
        self._down_until: float | None = None
        self._reason = ""

    @property
    def down(self) -> bool:
        return self._down_until is not None

    def admit(self, probe: Callable[[], Health]) -> None:
        """Raise ServerDown while the server is known to be down; once ``retry_after`` has passed, let the
        request through only if the health probe answers."""
        with self._lock:
            until, reason = self._down_until, self._reason
        if until is None:
            return
        if self.clock() < until:
            raise ServerDown(f"{self.source} is down ({reason}); plait tries it again in "
                             f"{until - self.clock():.0f} s")
        health = probe()
        if not health.ok:
            raise self.failed(f"{self.source} is still down: its health check says {health.detail}")
        self.succeeded()

    def failed(self, message: str) -> ServerDown:
        """Record a failure (``message`` names the server and what happened); returns the error to raise."""
        with self._lock:
            self._down_until = self.clock() + self.retry_after
            self._reason = message
        log.warning("remote model server down: %s", message)
        return ServerDown(message)

    def succeeded(self) -> None:
        with self._lock:
            if self._down_until is not None:
                log.warning("remote model server %s is back", self.source)
            self._down_until, self._reason = None, ""


class WithFallback(TextGenerator, Embedder):
    """A remote model whose generation requests another model answers while its server is down.

    A request falls back only when nothing of the answer has arrived: a stream cut off half-way is an
    error (the caller has part of an answer already), not something to paste another model's answer onto.
    """

    def __init__(self, primary: Any, fallback: str, models: Models) -> None:
        self.primary, self.fallback_name, self.models = primary, fallback, models
        self.spec = primary.spec
        self.batch_size = primary.batch_size
        self.default_max_tokens, self.default_temperature = primary.default_max_tokens, primary.default_temperature

    @property
    def dimensions(self) -> int:  # type: ignore[override]
        return int(self.primary.dimensions)

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        result: np.ndarray = self.primary.embed_batch(texts, kind)
        return result

    def count_tokens(self, text: str) -> int:
        return int(self.primary.count_tokens(text))

    def _fallback(self) -> TextGenerator:
        model = self.models.get(self.fallback_name)
        if not isinstance(model, TextGenerator):
            raise BackendError(f"the fallback '{self.fallback_name}' of model '{self.spec.name}' cannot generate "
                               "text; choose a chat model for its fallback option")
        return model

    def _answer(self, request: GenerationRequest, answered_by: list[str]) -> Iterator[Delta]:
        pieces = 0
        try:
            for delta in self.primary.stream(request):
                pieces += 1
                yield delta
            answered_by.append(self.spec.name)
            return
        except ServerDown as exc:
            if pieces:
                raise ServerDown(f"{exc}; the answer stopped after {pieces} piece(s) and is incomplete") from exc
            reason = exc
        log.warning("model '%s' is unavailable (%s); '%s' answers instead", self.spec.name, reason,
                    self.fallback_name)
        answered_by.append(self.fallback_name)
        yield from self._fallback().stream(request)

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        yield from self._answer(request, [])

    def run(self, request: GenerationRequest) -> Completion:
        """As :meth:`TextGenerator.run`, naming the model that actually answered."""
        answered_by: list[str] = []
        parts: list[str] = []
        finish, usage = "stop", Usage(0, 0)
        for delta in self._answer(request, answered_by):
            parts.append(delta.text)
            finish = delta.finish_reason or finish
            usage = delta.usage or usage
        return Completion("".join(parts), finish, usage,  # type: ignore[arg-type]
                          model=answered_by[0] if answered_by else self.spec.name)

    def close(self) -> None:
        self.primary.close()
