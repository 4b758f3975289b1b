"""Models behind an OpenAI-compatible HTTP server: Ollama (``http://localhost:11434/v1``), vLLM, a
hosted API. Same interfaces as local models.

Options of the catalog entry:
  remote_model  the model name the server knows (default: the catalog name)
  api_key_env   name of the environment variable holding the API key (the key itself is never stored)
  timeout       seconds of silence while waiting for an answer or its next piece (default 120)
  connect_timeout  seconds to open a connection (default 5)
  retry_after   seconds a server that failed counts as down before it is tried again (default 30)
  fallback      a catalog model that answers generation requests while the server is down
  redact        replace personal data by placeholders before a request leaves (default: the redact_remote
                setting, on); the answer's placeholders are put back before it is returned, so the person
                sees the real names while the server never received them

Each request is noted on the audit record of the HTTP request that caused it (backend, bytes, how many
personal details were redacted).

A server that refuses, hangs, answers 5xx/429 or sends a malformed or cut-off answer is down for a
while (:mod:`plait.models.availability`): requests fail at once, or go to the fallback model.

I/O goes through an ``httpx.Client`` whose transport tests replace with ``httpx.MockTransport``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

import httpx

from plait.errors import BackendError
from plait.models.availability import Availability, Health, ServerDown, WithFallback, timeouts
from plait.models.base import Delta, Embedder, EmbedKind, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.security.audit import AuditEvent, note_egress
from plait.security.pii import ENTITIES, Detector, default_detector
from plait.security.placeholders import StreamRestorer, Vault, apply
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np

    from plait.models.loading import Models


class RemoteModel(TextGenerator, Embedder):
    def __init__(self, spec: ModelSpec, *, transport: httpx.BaseTransport | None = None, redact: bool | None = None,
                 detector: Detector | None = None, record_egress: Callable[[AuditEvent], None] | None = None) -> None:
        self.spec = spec
        self.record_egress = record_egress  # the home's audit log, for sends outside an HTTP request
        option = spec.options.get("redact")
        self.redact = bool(option) if option is not None else (True if redact is None else redact)
        self._detector = detector
        self.remote_name = str(spec.options.get("remote_model", spec.name))
        headers = {}
        key_env = spec.options.get("api_key_env")
        if key_env and os.environ.get(str(key_env)):
            headers["Authorization"] = f"Bearer {os.environ[str(key_env)]}"
        self.client = httpx.Client(base_url=spec.source.rstrip("/"), headers=headers, transport=transport,
                                   timeout=timeouts(spec))
        self.availability = Availability(spec)
        self._dimensions: int | None = None

    # -- generation ------------------------------------------------------------------------------
    def _sampling(self, request: GenerationRequest) -> dict[str, Any]:
        """The request body's sampling and output-format fields, in the OpenAI API's names."""
        opts = self.resolved(request.options)
        body: dict[str, Any] = {"model": self.remote_name, "stream": True, "max_tokens": opts.max_tokens,
                                "temperature": opts.temperature, "stream_options": {"include_usage": True}}
        for key, value in (("top_p", opts.top_p), ("seed", opts.seed)):
            if value is not None:
                body[key] = value
        if opts.stop:
            body["stop"] = list(opts.stop)
        if opts.logit_bias:
            body["logit_bias"] = {str(token): bias for token, bias in opts.logit_bias.items()}
        if opts.json_schema is not None:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "output", "schema": opts.json_schema, "strict": True}}
        elif opts.json_object:
            body["response_format"] = {"type": "json_object"}
        return body

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        body = self._sampling(request)
        vault = Vault() if self.redact else None
        if request.messages is not None:
            path = "/chat/completions"
            body["messages"] = [{"role": m.role, "content": self._private(m.content, vault)} for m in request.messages]
        else:
            path, body["prompt"] = "/completions", self._private(request.prompt or "", vault)

        finish, usage, generated = "stop", None, 0
        restorer = StreamRestorer(vault) if vault is not None else None
        with closing(self._call("POST", path, json=body, vault=vault)) as response:
            for event in self._events(response):
                if request.cancel.is_set():
                    finish = "cancelled"
                    break  # leaving the block closes the connection, which stops the server
                if event.get("usage"):
                    u = event["usage"]
                    usage = Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
                for choice in event.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
                    if text:
                        generated += 1
                        shown = restorer.feed(text) if restorer is not None else text
                        if shown:
                            yield Delta(shown)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
        if restorer is not None and (rest := restorer.flush()):
            yield Delta(rest)
        yield Delta("", finish_reason=finish if finish in ("length", "cancelled") else "stop",  # type: ignore[arg-type]
                    usage=usage or Usage(0, generated))

    # -- embeddings ------------------------------------------------------------------------------
    @property
    def dimensions(self) -> int:  # type: ignore[override]
        if self._dimensions is None:
            self._dimensions = int(self.embed_batch(["dimension probe"]).shape[1])
        return self._dimensions

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        import numpy as np

        vault = Vault() if self.redact else None
        body = {"model": self.remote_name, "input": [self._private(t, vault) for t in texts]}
        with closing(self._call("POST", "/embeddings", json=body, vault=vault)) as response:
            try:
                response.read()
                data = _json(response)
            except (httpx.HTTPError, BackendError) as exc:
                raise self.availability.failed(f"{self.spec.source} sent no usable embeddings ({exc})") from exc
        rows = sorted(data.get("data", []), key=lambda d: d.get("index", 0))
        if len(rows) != len(texts):
            raise BackendError(f"{self.spec.source} returned {len(rows)} embeddings for {len(texts)} texts")
        return np.asarray([r["embedding"] for r in rows], dtype=np.float32)

    # -- privacy ---------------------------------------------------------------------------------
    def _private(self, text: str, vault: Vault | None) -> str:
        """``text`` with its personal data replaced by the request's placeholders (unchanged when off)."""
        if vault is None or not text:
            return text
        if self._detector is None:
            self._detector = default_detector(nlp=True)
        redacted, _ = apply(text, self._detector.detect(text, ENTITIES), vault)
        return redacted

    # -- plumbing --------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, json: dict[str, Any], vault: Vault | None = None) -> httpx.Response:
        """Send a request, streaming the response body; the caller closes it."""
        self.availability.admit(self.health)
        request = self.client.build_request(method, path, json=json)
        note_egress(self.spec.source, self.remote_name, len(request.content), len(vault.back) if vault else 0,
                    self.record_egress)
        try:
            response = self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise self.availability.failed(f"{self.spec.source} did not answer in time ({type(exc).__name__}; the "
                                           "model's timeout and connect_timeout options set how long to wait)") from exc
        except httpx.HTTPError as exc:
            raise self.availability.failed(
                f"cannot reach {self.spec.source} ({exc}); is the server running and the URL right?") from exc
        if response.status_code >= 500 or response.status_code == 429:
            response.read()
            response.close()
            raise self.availability.failed(f"{self.spec.source}{path} answered {response.status_code}: "
                                           f"{_error_detail(response)}")
        self.availability.succeeded()
        if response.status_code >= 400:
            response.read()
            response.close()
            detail = _error_detail(response)
            hint = " (check the API key: its variable is set in the model's api_key_env option)" \
                if response.status_code in (401, 403) else ""
            raise BackendError(f"{self.spec.source}{path} answered {response.status_code}: {detail}{hint}")
        return response

    def _events(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        """The answer's events; a server that goes silent, drops the connection, sends a malformed event or
        ends the stream before the answer is complete is down."""
        complete, done = False, list[bool]()
        try:
            for event in _sse_events(response, done):
                complete = complete or any(c.get("finish_reason") for c in event.get("choices") or [])
                yield event
        except ServerDown:
            raise
        except (httpx.HTTPError, BackendError) as exc:
            raise self.availability.failed(f"{self.spec.source} broke off its answer ({type(exc).__name__}: "
                                           f"{exc})") from exc
        if not (complete or done):
            raise self.availability.failed(f"{self.spec.source} ended its answer before it was complete "
                                           "(no [DONE])")

    def health(self) -> Health:
        """Ask the server which models it serves (``GET /models``, short timeouts): up, and serving this one?"""
        from plait.models.availability import HEALTH_TIMEOUT

        start = time.perf_counter()
        try:
            response = self.client.get("/models", timeout=HEALTH_TIMEOUT)
            seconds = time.perf_counter() - start
            if response.status_code != 200:
                return Health(False, seconds, f"/models answered {response.status_code}")
            served = tuple(str(m.get("id")) for m in _json(response).get("data", []) if isinstance(m, dict))
        except (httpx.HTTPError, BackendError) as exc:
            return Health(False, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
        if served and self.remote_name not in served:
            return Health(False, seconds, f"up, but serves {', '.join(served[:5])}, not {self.remote_name}", served)
        return Health(True, seconds, "up", served)

    def close(self) -> None:
        self.client.close()


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError as exc:
        raise BackendError(f"{response.request.url} did not answer with JSON") from exc
    if not isinstance(data, dict):
        raise BackendError(f"{response.request.url} answered with unexpected JSON")
    return data


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
        err = data.get("error", data)
        return str(err.get("message", err) if isinstance(err, dict) else err)[:300]
    except ValueError:
        return response.text[:300] or response.reason_phrase


def _sse_events(response: httpx.Response, done: list[bool] | None = None) -> Iterator[dict[str, Any]]:
    """Server-sent events of an OpenAI-style stream: ``data: {...}`` lines, ended by ``data: [DONE]`` (noted in
    ``done``: a body that ends without it was cut short)."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            if done is not None:
                done.append(True)
            return
        try:
            yield json.loads(payload)
        except ValueError as exc:
            raise BackendError(f"{response.request.url} sent a malformed stream event: {payload[:100]}") from exc


def load(spec: ModelSpec, settings: Settings, models: Models) -> TextGenerator:
    model = RemoteModel(spec, redact=settings.redact_remote, record_egress=models.record_egress)
    fallback = spec.options.get("fallback")
    return WithFallback(model, str(fallback), models) if fallback else model
