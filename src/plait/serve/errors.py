"""Errors as HTTP responses: OpenAI's error shape on /v1 routes, Ollama's on /api routes.

Every plait error maps to one status code here and nowhere else; routes raise :class:`ApiError` or let
:class:`~plait.errors.PlaitError` propagate. Unexpected exceptions become a 500 whose body names no
internals (the traceback goes to the server log).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plait.errors import (
    CapabilityError,
    CatalogError,
    ConfigError,
    ContextTooLong,
    InputError,
    MissingDependency,
    ModelNotFound,
    ModelOutputError,
    PlaitError,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger("plait.serve")


@dataclass
class ApiError(Exception):
    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class ClientGone(Exception):
    """The client closed the connection before the answer was complete."""


def from_plait_error(exc: PlaitError) -> ApiError:
    if isinstance(exc, ModelNotFound):
        return ApiError(404, str(exc), code="model_not_found", param="model")
    if isinstance(exc, ContextTooLong):
        return ApiError(400, str(exc), code="context_length_exceeded", param="messages")
    if isinstance(exc, InputError | CapabilityError | CatalogError):
        return ApiError(400, str(exc))
    if isinstance(exc, ModelOutputError):
        return ApiError(422, str(exc), code="model_output_invalid")
    if isinstance(exc, MissingDependency):
        return ApiError(501, str(exc), type="not_implemented", code="missing_dependency")
    if isinstance(exc, ConfigError):
        return ApiError(500, str(exc), type="server_error", code="config_error")
    return ApiError(500, str(exc), type="server_error")


def status_type(status: int) -> str:
    return {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error",
            413: "invalid_request_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error" if status < 500 else "server_error")


# The refusals every route documents; each family of routes gives them its own error body.
_REFUSALS = {
    400: "invalid request", 401: "missing or invalid API key", 403: "the key lacks the scope",
    404: "unknown model", 413: "request body too large", 429: "rate limit or queue full",
}


def error_responses(body: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for the refusals, documented with ``body`` as the error shape."""
    return {status: {"model": body, "description": text} for status, text in _REFUSALS.items()}


# "UnboundLocalError: cannot access local variable…", "(KeyError: 'x')": what a library raised inside plait.
_INTERNAL = re.compile(r"\s*\(?\b[A-Z][A-Za-z0-9]*(?:Error|Exception|Warning)\b:[^;)]*\)?")
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


def public_message(message: str) -> str:
    """An error message fit for an HTTP answer: the text of an exception raised by a library (its class name
    and message) or a traceback is removed; it stays in the server log. plait's own messages pass as they are."""
    if _TRACEBACK.search(message):
        return "internal server error; see the server log"
    cleaned = _INTERNAL.sub("", message).replace("()", "")
    cleaned = re.sub(r":\s*(?=;|$)", "", cleaned).strip()
    return cleaned or "the request failed; see the server log"


def body_for(path: str, err: ApiError) -> dict[str, Any]:
    message = public_message(err.message)
    if path.startswith("/api/"):
        return {"error": message}
    return {"error": {"message": message, "type": err.type, "param": err.param, "code": err.code}}


def install(app: Any) -> None:
    """Register the exception handlers on a FastAPI app."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException

    def respond(request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(body_for(request.url.path, err), status_code=err.status, headers=err.headers or None)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return respond(request, exc)

    @app.exception_handler(PlaitError)
    async def plait_error(request: Request, exc: PlaitError) -> JSONResponse:
        err = from_plait_error(exc)
        if err.status >= 500:
            log.error("request %s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        return respond(request, err)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(request, validation_error(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.url.path}; see /docs for the API"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(request)
        err = ApiError(exc.status_code, message, type=status_type(exc.status_code), headers=headers)
        return respond(request, err)

    @app.exception_handler(ClientGone)
    async def client_gone(request: Request, exc: ClientGone) -> Response:
        # The client left before its answer began (a Stop, a closed tab): nothing to answer, nothing wrong.
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("request %s %s failed unexpectedly", request.method, request.url.path, exc_info=exc)
        return respond(request, ApiError(500, "internal server error; see the server log", type="server_error"))


def _allowed(request: Any) -> str:
    """Every method some route serves at this path. (Starlette answers 405 with the methods of the first route
    whose path matched, so a path served by separate GET and POST routes would claim only one.)"""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def validation_error(errors: Any) -> ApiError:
    """One readable line from pydantic's errors, naming the field (OpenAI's ``param``)."""
    errors = list(errors)
    if not errors:
        return ApiError(400, "invalid request")
    first = errors[0]
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return ApiError(400, "the request body is not valid JSON", code="invalid_json")
    if not loc and first.get("type") == "missing":
        return ApiError(400, "the request needs a JSON body", code="missing_body")
    if not loc and first.get("type") in ("model_type", "model_attributes_type", "dict_type"):
        return ApiError(400, "the request body must be a JSON object, sent with Content-Type: application/json",
                        code="invalid_body")
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    message = f"{param}: {msg}" if param else msg
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return ApiError(400, message + more, param=param)
