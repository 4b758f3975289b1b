"""Refusing requests a browser was tricked into sending: foreign Host names and cross-site origins.

- **Trusted Host.** A web page on another site can point a name it controls at 127.0.0.1 (DNS rebinding)
  and then read this server as if it were its own origin. The browser still sends that name as ``Host``,
  so only the names this server is really reached by are accepted: 127.0.0.1, localhost, [::1], the
  configured ``host`` and ``trusted_hosts``. Anything else is 400 before any route runs.
- **Cross-site requests.** A page on another site can make a browser POST to this server (a form, or
  ``fetch`` with ``text/plain``) without CORS: the answer is hidden from it, but the request still acts
  (a webhook item added, a key used from a cookie the web page holds). Browsers name the page's origin in
  ``Origin`` (and ``Sec-Fetch-Site``); a request from another origin than this server's own or one in
  ``cors_origins`` is 403, whatever its method.

Programs that are not browsers (curl, the OpenAI client, the CLI) send neither header and are unaffected.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from plait.serve.errors import ApiError, body_for

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def host_name(value: str) -> str:
    """The name part of a Host header or origin netloc: lower case, without port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def trusted_names(host: str, extra: tuple[str, ...] | list[str] = ()) -> frozenset[str]:
    """Loopback names, ``extra``, and the bind address; beyond loopback also this machine's names and
    addresses (what other machines reach it by)."""
    names = set(LOOPBACK_NAMES) | {host_name(h) for h in extra if h.strip()}
    if host_name(host) not in WILDCARDS:
        names.add(host_name(host))
    if host_name(host) not in LOOPBACK_NAMES:
        from plait.security.tls import machine_names

        names |= {host_name(n) if n.count(":") < 2 else n.lower() for n in machine_names()}
    return frozenset(names)


class RequestGuard:
    """ASGI middleware applying the two checks above to every HTTP request."""

    def __init__(self, app: Any, *, trusted: frozenset[str], origins: tuple[str, ...] = ()) -> None:
        self.app, self.trusted = app, trusted
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host", "")
        if host_name(host) not in self.trusted:
            await _refuse(send, scope, ApiError(400, "this server does not answer to the host name "
                                                f"'{host_name(host) or '(none)'}'; use 127.0.0.1 or add the name to "
                                                "the trusted_hosts setting", code="untrusted_host"))
            return
        origin = headers.get("origin")
        if origin is not None and not self._same_or_allowed(origin, host, scope):
            await _refuse(send, scope, ApiError(403, f"requests from the web page of another site ({origin[:80]}) "
                                                "are refused; allow its origin with the cors_origins setting",
                                                type="permission_error", code="cross_site_request"))
            return
        if origin is None and headers.get("sec-fetch-site") == "cross-site":
            await _refuse(send, scope, ApiError(403, "cross-site requests are refused", type="permission_error",
                                                code="cross_site_request"))
            return
        await self.app(scope, receive, send)

    def _same_or_allowed(self, origin: str, host: str, scope: dict[str, Any]) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if not parts.scheme or not parts.netloc:
            return False  # "null" (a sandboxed page, a file:) or garbage
        scheme = scope.get("scheme", "http")
        return parts.scheme == scheme and parts.netloc == host.strip().lower()


async def _refuse(send: Any, scope: dict[str, Any], err: ApiError) -> None:
    state = scope.setdefault("state", {})
    state["refused"] = err.code  # the access log and audit record say why
    body = json.dumps(body_for(scope["path"], err)).encode()
    await send({"type": "http.response.start", "status": err.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
