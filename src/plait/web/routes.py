"""The page's own routes: its files, signing in with a link, and the session the page reads.

Everything else the page shows comes from plait's HTTP API (tasks, index, workflows, models, settings),
the same routes other programs use.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from plait.serve.deps import ChatKey, Ctx
from plait.serve.errors import ApiError
from plait.web.sessions import COOKIE, SESSION_SECONDS, end, redeem, session_for

STATIC = Path(str(files("plait.web") / "static"))
# A static file's name: letters, digits, - and _, one extension the page uses; at most two sub-folders.
_NAME = re.compile(r"^(?:[a-z0-9_-]+/){0,2}[a-z0-9_-]+\.(?:js|css|svg|png|woff2)$")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png",
          ".woff2": "font/woff2"}
# The page runs only its own scripts and styles, talks only to this server, and cannot be framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data: blob:; media-src 'self' blob: data:; connect-src 'self'; "
                               "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False)
api = APIRouter(tags=["Web page"])


NO_CACHE = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}  # the files change with plait: always revalidate


def _page(name: str) -> Response:
    return FileResponse(STATIC / name, media_type="text/html", headers=NO_CACHE)


@router.get("/")
async def index() -> Response:
    return _page("index.html")


@router.get("/static/{name:path}")
async def static(name: str) -> Response:
    path = STATIC / name
    if not _NAME.match(name) or not path.is_file():
        raise ApiError(404, f"no page file '{name}'", type="invalid_request_error", code="not_found")
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=NO_CACHE)


@router.get("/signin")
async def signin(request: Request, ctx: Ctx, token: str = "") -> Response:
    # Session queries run off the event loop: a write may wait for the database's lock.
    found = await ctx.run(redeem, ctx.runtime.store, token) if token else None
    if found is None:
        return HTMLResponse(_SPENT, status_code=401, headers=SECURITY_HEADERS)
    secret, _ = found
    response = RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(COOKIE, secret, max_age=SESSION_SECONDS, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@api.get("/v1/session")
async def session(request: Request, ctx: Ctx, key: ChatKey) -> dict[str, Any]:
    """Who the page is signed in as, and the token it sends back with every change (X-Plait-CSRF)."""
    cookie = request.cookies.get(COOKIE)
    found = await ctx.run(session_for, ctx.runtime.store, cookie) if cookie else None
    return {"signed_in": True, "key": key.name, "csrf": found.csrf if found else None,
            "expires_at": found.expires_at if found else None, "version": _version()}


@api.post("/v1/session/signout", status_code=204)
async def signout(request: Request, ctx: Ctx, key: ChatKey) -> Response:
    cookie = request.cookies.get(COOKIE)
    found = await ctx.run(session_for, ctx.runtime.store, cookie) if cookie else None
    if found is not None:
        await ctx.run(end, ctx.runtime.store, found.id)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


def _version() -> str:
    from plait import __version__

    return __version__


_SPENT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>plait: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="stylesheet" href="/static/app.css">
</head><body><main class="signin"><h1>This sign-in link has been used or has expired</h1>
<p>Each link opens the page once. Run <code>plait open</code> on this machine for a new one
(or look for the link <code>plait up</code> printed).</p></main></body></html>"""
