"""Models behind an OpenAI-compatible HTTP server: Ollama (``http://localhost:11434/v1``), vLLM, a
hosted API. Same interfaces as local models.

Options of the catalog entry:
  remote_model  the model name the server knows (default: the catalog name)
  api_key_env   name of the environment variable holding the API key (the key itself is never stored)
  timeout       seconds (default 120)

I/O goes through an ``httpx.Client`` whose transport tests replace with ``httpx.MockTransport``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

import httpx

from plait.errors import BackendError
from plait.models.base import Delta, Embedder, EmbedKind, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np


class RemoteModel(TextGenerator, Embedder):
    def __init__(self, spec: ModelSpec, *, transport: httpx.BaseTransport | None = None) -> None:
        self.spec = spec
        self.remote_name = str(spec.options.get("remote_model", spec.name))
        headers = {}
        key_env = spec.options.get("api_key_env")
        if key_env and os.environ.get(str(key_env)):
            headers["Authorization"] = f"Bearer {os.environ[str(key_env)]}"
        self.client = httpx.Client(base_url=spec.source.rstrip("/"), headers=headers, transport=transport,
                                   timeout=float(spec.options.get("timeout", 120)))
        self._dimensions: int | None = None

    # -- generation ------------------------------------------------------------------------------
    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
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
        if request.messages is not None:
            path = "/chat/completions"
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        else:
            path, body["prompt"] = "/completions", request.prompt

        finish, usage, generated = "stop", None, 0
        with closing(self._call("POST", path, json=body)) as response:
            for event in _sse_events(response):
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
                        yield Delta(text)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
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

        body = {"model": self.remote_name, "input": list(texts)}
        with closing(self._call("POST", "/embeddings", json=body)) as response:
            response.read()
            data = _json(response)
        rows = sorted(data.get("data", []), key=lambda d: d.get("index", 0))
        if len(rows) != len(texts):
            raise BackendError(f"{self.spec.source} returned {len(rows)} embeddings for {len(texts)} texts")
        return np.asarray([r["embedding"] for r in rows], dtype=np.float32)

    # -- plumbing --------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, json: dict[str, Any]) -> httpx.Response:
        """Send a request, streaming the response body; the caller closes it."""
        try:
            response = self.client.send(self.client.build_request(method, path, json=json), stream=True)
        except httpx.HTTPError as exc:
            raise BackendError(
                f"cannot reach {self.spec.source} ({exc}); is the server running and the URL right?") from exc
        if response.status_code >= 400:
            response.read()
            response.close()
            detail = _error_detail(response)
            hint = " (check the API key: its variable is set in the model's api_key_env option)" \
                if response.status_code in (401, 403) else ""
            raise BackendError(f"{self.spec.source}{path} answered {response.status_code}: {detail}{hint}")
        return response

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


def _sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Server-sent events of an OpenAI-style stream: ``data: {...}`` lines, ended by ``data: [DONE]``."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            yield json.loads(payload)
        except ValueError as exc:
            raise BackendError(f"{response.request.url} sent a malformed stream event: {payload[:100]}") from exc


def load(spec: ModelSpec, settings: Settings) -> RemoteModel:
    return RemoteModel(spec)
