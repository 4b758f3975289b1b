"""FastAPI dependencies: the app's context and the API key a request carries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from plait.serve.auth import SCOPES, ApiKey, Scope
from plait.serve.context import ServerContext
from plait.serve.errors import ApiError
from plait.serve.ratelimit import retry_after_header
from plait.web.sessions import COOKIE, CSRF_HEADER, csrf_ok, session_for

_bearer = HTTPBearer(auto_error=False, description="an API key from `plait keys create` "
                                                   "(or $PLAIT_HOME/local.key)")
ANONYMOUS = ApiKey(id="-", name="anonymous", prefix="", scopes=SCOPES, rate_limit=None, created_at="",
                   last_used_at=None, revoked_at=None)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _web_session_key(request: Request, ctx: ServerContext, cookie: str) -> ApiKey:
    """The owner, for a request signed in by the web page's session cookie (see plait.web.sessions)."""
    # A database query (it may wait for the write lock): off the event loop, as bearer keys are.
    session = await ctx.run(session_for, ctx.runtime.store, cookie)
    if session is None:
        raise ApiError(401, "the web page's session has ended; open a new sign-in link (`plait open`)",
                       type="authentication_error", code="session_expired")
    if request.method not in SAFE_METHODS:
        origin = request.headers.get("origin")
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if (origin is not None and origin != own) or not csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise ApiError(403, "a change asked with the web page's cookie must come from the page itself",
                           type="permission_error", code="csrf")
    return ApiKey(id=f"web:{session.id}", name="web page", prefix="", scopes=SCOPES, rate_limit=None,
                  created_at="", last_used_at=None, revoked_at=None)


def get_context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServerContext, Depends(get_context)]


def require(scope: Scope) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency admitting requests whose key has ``scope`` (or admin), within its rate limit."""

    async def check(request: Request, ctx: Ctx,
                    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> ApiKey:
        secret = credentials.credentials if credentials else request.headers.get("x-api-key")
        cookie = request.cookies.get(COOKIE)
        if not ctx.settings.api_auth:
            key = ANONYMOUS
        elif not secret and cookie:
            key = await _web_session_key(request, ctx, cookie)
        else:
            if not secret:
                raise ApiError(401, "this server needs an API key: send 'Authorization: Bearer <key>' "
                               "(create one with `plait keys create NAME`)", type="authentication_error",
                               code="missing_api_key", headers={"WWW-Authenticate": "Bearer"})
            client = request.client.host if request.client else "?"
            backoff_check(ctx, client)
            found = await ctx.run(ctx.keys.verify, secret)
            if found is None:
                auth_failed(ctx, request, client)
                raise ApiError(401, "the API key is not valid or was revoked; see `plait keys list`",
                               type="authentication_error", code="invalid_api_key",
                               headers={"WWW-Authenticate": "Bearer"})
            ctx.backoff.succeeded(client)
            key = found
            if not key.allows(scope):
                raise ApiError(403, f"the API key '{key.name}' lacks the '{scope}' scope; create a key with it "
                               f"(`plait keys create NAME --scopes {scope}`)", type="permission_error",
                               code="insufficient_scope")
        request.state.api_key = key.name  # for the access log: the key's name, never its secret
        request.state.api_key_id = key.id  # for the audit log
        wait = ctx.limiter.check(key.id, key.rate_limit)
        if wait > 0:
            raise ApiError(429, f"rate limit of {key.rate_limit} requests per minute reached for key "
                           f"'{key.name}'; retry later", type="rate_limit_error", code="rate_limit_exceeded",
                           headers={"Retry-After": retry_after_header(wait)})
        return key

    check.scope = scope  # type: ignore[attr-defined]  # read by tests that walk the routes
    return check


def backoff_check(ctx: ServerContext, client: str) -> None:
    """429 while ``client`` is backing off after failed sign-ins (its key is not even checked)."""
    wait = ctx.backoff.wait(client)
    if wait > 0:
        raise ApiError(429, f"too many requests with a wrong key from {client}; wait {retry_after_header(wait)} s",
                       type="rate_limit_error", code="auth_backoff", headers={"Retry-After": retry_after_header(wait)})


def auth_failed(ctx: ServerContext, request: Request, client: str) -> None:
    """A wrong or revoked key: counted, audited (with anomaly detection) and backed off."""
    import time

    from plait.security.audit import AuditEvent

    ctx.backoff.failed(client)
    ctx.metrics.auth_failures.inc()
    if ctx.audit is not None:
        route = request.scope.get("route")
        ctx.audit.record(AuditEvent(time.time(), "auth_failure", client=client, method=request.method,
                                    route=getattr(route, "path", None) or request.url.path))


ChatKey = Annotated[ApiKey, Depends(require("chat"))]
TasksKey = Annotated[ApiKey, Depends(require("tasks"))]
IndexKey = Annotated[ApiKey, Depends(require("index"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]
