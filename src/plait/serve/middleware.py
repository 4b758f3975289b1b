"""Plain ASGI middleware (no BaseHTTPMiddleware: it buffers streams and hides disconnects).

- :class:`BodyLimit` refuses bodies over the limit with 413, by Content-Length up front and by counting
  the bytes of a chunked body as they arrive.
- :class:`AccessLog` writes one structured line per request (never a body, a query string or a key's
  secret), records the request metrics, and hands the request's audit record (which routes and tasks
  add to while it is answered) to the audit log.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from plait.security.audit import AuditEvent, AuditLog, recording
from plait.serve.errors import ApiError, body_for
from plait.serve.metrics import Metrics

Scope = dict[str, Any]
Message = dict[str, Any]
access_log = logging.getLogger("plait.access")


class _TooLarge(Exception):
    pass


async def _send_error(send: Any, path: str, err: ApiError) -> None:
    body = json.dumps(body_for(path, err)).encode()
    await send({"type": "http.response.start", "status": err.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = ApiError(413, f"the request body is larger than the server's limit of {self.max_bytes} bytes "
                             "(setting max_request_bytes)", code="request_too_large")
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_error(send, scope["path"], ApiError(400, "invalid Content-Length header"))
                    return
                if declared > self.max_bytes:
                    await _send_error(send, scope["path"], too_large)
                    return
        seen = 0
        exceeded = started = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The app turned the aborted read into its own error (FastAPI: a 400 "error parsing
                # the body"); answer the real reason instead, once.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _send_error(send, scope["path"], too_large)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            if not started:
                await _send_error(send, scope["path"], too_large)


class AccessLog:
    def __init__(self, app: Any, metrics: Metrics, audit: Callable[[], AuditLog | None] = lambda: None) -> None:
        self.app, self.metrics, self.audit = app, metrics, audit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        sent = received = 0
        event = AuditEvent(time.time(), "request", method=scope["method"])

        async def counting_receive() -> Message:
            nonlocal received
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        self.metrics.in_flight.inc()
        try:
            with recording(event):
                await self.app(scope, counting_receive, tracking_send)
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            # The route's template, not the raw path: unknown paths must not create new metric series.
            label = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(route=label, method=scope["method"], status=str(status)).inc()
            self.metrics.latency.labels(route=label).observe(elapsed)
            client = scope.get("client")
            state = scope.get("state") or {}
            audit = self.audit()
            if audit is not None:
                event.key, event.key_name = state.get("api_key_id"), state.get("api_key")
                event.client, event.route, event.status = client[0] if client else None, label, status
                event.bytes_in, event.bytes_out, event.ms = received, sent, round(elapsed * 1000, 2)
                if state.get("refused"):
                    event.detail["refused"] = state["refused"]
                audit.record(event)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(json.dumps({
                    "ts": round(time.time(), 3), "method": scope["method"], "path": scope["path"],
                    "status": status, "ms": round(elapsed * 1000, 2), "bytes": sent,
                    "key": state.get("api_key"), "client": client[0] if client else None,
                }))
