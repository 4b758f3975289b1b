"""The auth and hardening matrix, generated from the app's own route list: every route × (no key, wrong key,
revoked key, a key of each scope, a foreign Host, a foreign Origin) gets the status it must. A route added
later is covered without editing this file, and one that needs no key fails here unless it is listed as
public on purpose."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from plait.runtime import Runtime
from plait.security.backoff import AuthBackoff
from plait.serve.app import create_app
from plait.serve.auth import SCOPES, KeyStore

# Routes any client may call without a key (they reveal nothing personal), and the webhook, which has its own.
# The web page's shell and files are the same for everyone.
PUBLIC = {"/health", "/docs", "/openapi.json", "/docs/assets", "/", "/static/{name:path}"}
# Routes with a credential of their own: a workflow's webhook key, the page's one-time sign-in token.
OWN_KEY = {"/v1/workflows/{name}/webhook", "/signin"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the template
    url: str  # with its parameters filled
    scope: str | None  # the scope a key needs; None: public or its own key


def _scope_of(dependant: Any) -> str | None:
    for dep in dependant.dependencies:
        scope = getattr(dep.call, "scope", None)
        if scope is not None:
            return str(scope)
        inner = _scope_of(dep)
        if inner is not None:
            return inner
    return None


def _flatten(routes: list[Any], prefix: str = "", scope: str | None = None) -> Iterator[tuple[Any, str, str | None]]:
    """Routes with their prefix and any scope required where their router was included (FastAPI keeps
    included routers as wrappers)."""
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:
            given = next((getattr(d.dependency, "scope", None) for d in context.dependencies
                          if getattr(d.dependency, "scope", None)), None)
            yield from _flatten(route.original_router.routes, prefix + context.prefix, given or scope)
        else:
            yield route, prefix, scope


def endpoints(app: Any) -> list[Endpoint]:
    found = []
    for route, prefix, included_scope in _flatten(app.routes):
        if isinstance(route, APIRoute):
            path = prefix + route.path
            url = re.sub(r"\{[^}]+\}", "x", path)
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                found.append(Endpoint(method, path, url, _scope_of(route.dependant) or included_scope))
        elif isinstance(route, Mount):
            found.append(Endpoint("GET", route.path, route.path + "/swagger-ui.css", None))
        elif isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
                found.append(Endpoint(method, route.path, route.path, None))
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    from tests.fakes import fake_runtime

    home = tmp_path_factory.mktemp("matrix") / "home"
    rt = fake_runtime(home)
    keys = KeyStore(rt.store)
    secrets = {scope: keys.create(f"only-{scope}", [scope]).secret for scope in SCOPES}
    revoked = keys.create("revoked", list(SCOPES))
    keys.revoke(revoked.key.id)
    secrets["revoked"] = revoked.secret
    app = create_app(rt.settings, runtime=rt)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client, secrets, rt
    rt.close()


def _call(client: TestClient, ep: Endpoint, headers: dict[str, str]) -> int:
    client.app.state.ctx.backoff = AuthBackoff()  # type: ignore[attr-defined]  # each call judged on its own
    body = {"json": {}} if ep.method in ("POST", "PUT", "PATCH") else {}
    return client.request(ep.method, ep.url, headers=headers, **body).status_code  # type: ignore[arg-type]


def test_every_route_is_guarded(served: tuple[TestClient, dict[str, str], Runtime]) -> None:
    client, secrets, _ = served
    routes = endpoints(client.app)
    assert len(routes) >= 30  # the OpenAI, Ollama, task, workflow, security and operations routes
    unguarded = [f"{e.method} {e.path}" for e in routes if e.scope is None and e.path not in PUBLIC | OWN_KEY]
    assert not unguarded, f"routes without a key check (add a scope, or list them as public): {unguarded}"
    bearer = lambda s: {"Authorization": f"Bearer {s}"}  # noqa: E731
    admin = secrets["admin"]
    problems = []
    for ep in routes:
        guarded = ep.path not in PUBLIC
        expected: dict[str, set[int] | str] = {
            "no key": {401} if guarded else "ok",
            "wrong key": {401} if guarded else "ok",
            "revoked key": {401} if guarded else "ok",
            "foreign Host": {400},
            "foreign Origin": {403},
        }
        headers: dict[str, dict[str, str]] = {
            "no key": {}, "wrong key": bearer("plait-" + "x" * 43), "revoked key": bearer(secrets["revoked"]),
            "foreign Host": {**bearer(admin), "Host": "rebind.evil.example"},
            "foreign Origin": {**bearer(admin), "Origin": "https://evil.example"},
        }
        for scope in SCOPES:
            case = f"{scope} key"
            headers[case] = bearer(secrets[scope])
            allowed = ep.scope is None and ep.path not in OWN_KEY or ep.scope in (scope,) or scope == "admin"
            if ep.path in OWN_KEY:
                expected[case] = {401}  # an API key is not the workflow's webhook key
            else:
                expected[case] = "ok" if allowed else {403}
        for case, want in expected.items():
            status = _call(client, ep, headers[case])
            ok = status not in (401, 403) and status < 500 if want == "ok" else status in want  # type: ignore[operator]
            if not ok:
                problems.append(f"{ep.method} {ep.url} with {case}: {status}, expected {want}")
    assert not problems, "\n".join(problems)


def test_a_route_without_a_scope_would_be_caught(served: tuple[TestClient, dict[str, str], Runtime]) -> None:
    client, _, _ = served
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {"personal": "data"}

    app = create_app(client.app.state.ctx.settings, runtime=client.app.state.ctx.runtime)  # type: ignore[attr-defined]
    app.include_router(router)
    assert [e.path for e in endpoints(app) if e.scope is None and e.path not in PUBLIC | OWN_KEY] == ["/v1/forgotten"]
