"""The HTTP app: ``create_app(settings)`` builds one FastAPI app with its own runtime and state.

No globals: everything a route needs hangs off ``app.state.ctx`` (a :class:`ServerContext`), so tests and
benchmarks can run several apps in one process. The app

- includes the OpenAI-compatible, Ollama-compatible, task and operations routes;
- wraps them in a body-size limit and a structured access log that records the Prometheus metrics;
- enables CORS only for the origins configured in ``cors_origins``;
- on shutdown stops the micro-batchers, cancels what is still generating and closes its runtime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from plait.errors import MissingDependency
from plait.models.llamacpp import wait_passively
from plait.runtime import Runtime
from plait.settings import Settings


def _fastapi() -> Any:
    try:
        import fastapi
        import prometheus_client  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("the server", extra="serve", package="fastapi, uvicorn and prometheus-client") \
            from exc
    return fastapi


def create_app(settings: Settings, *, runtime: Runtime | None = None, preload: bool = False,
               workflows: bool = False) -> Any:
    """A FastAPI app serving plait with ``settings``.

    ``runtime`` lets a caller share an existing runtime (its models stay loaded); the app closes only a
    runtime it created. ``preload`` loads the default chat and embedding models at startup, in the
    background, so the first request does not wait for them. ``workflows`` runs the enabled workflows of
    ``$PLAIT_HOME/workflows`` on their triggers for as long as the app runs (``plait up``); their status
    routes are mounted either way.
    """
    # llama.cpp keeps every thread of the threads setting under the server too (the runtime is not given
    # fewer): it decodes all active answers in one batch per step, and with OpenMP's threads waiting
    # passively the event loop still gets its turns. On 2 cores (loaded by other work, load ~8) 2 threads
    # served 1.29x the tokens/s of 1 at 4 clients and 1.28x at 1 client.
    wait_passively()  # for a program that builds the app itself; the CLI did it at start
    fastapi = _fastapi()
    from plait import __version__
    from plait.serve import errors
    from plait.serve.context import ServerContext
    from plait.serve.hardening import RequestGuard, trusted_names
    from plait.serve.middleware import AccessLog, BodyLimit
    from plait.serve.routes import conversations, health, index, jobs, models, ollama, openai, tasks
    from plait.serve.routes import security as security_routes
    from plait.serve.routes import settings as settings_routes
    from plait.web import routes as web

    own_runtime = runtime is None
    rt = runtime or Runtime(settings)
    ctx = ServerContext(settings, rt)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if ctx.closing:
            ctx.open()
        if any(s.backend == "openai" for s in rt.catalog.all()):
            # Presidio imported now, before other threads load models (see plait.security.pii._presidio).
            await ctx.run(_warm_redaction)
        if preload:
            for name in (settings.chat_model, settings.embed_model):
                ctx.work_pool.submit(_preload, rt, name)
        if workflows:
            from plait.workflows.runner import start

            app.state.workflows = start(rt)
        yield
        if app.state.workflows is not None:
            app.state.workflows.stop()  # after the steps in progress; unfinished items stay pending
            app.state.workflows = None
        await ctx.close()
        if own_runtime:
            rt.pool.close()  # frees the models; the database reopens by itself if the app starts again

    app = fastapi.FastAPI(
        title="plait", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
        description="Local models over HTTP: OpenAI- and Ollama-compatible APIs and plait's task routes. "
                    "Send an API key as 'Authorization: Bearer <key>' (`plait keys create`).",
    )
    app.state.ctx = ctx
    app.state.workflows = None
    errors.install(app)
    if settings.api_docs:
        from plait.serve.docs import install_docs

        install_docs(app)  # /docs from swagger-ui files installed with plait, never a CDN
    app.include_router(health.router)
    app.include_router(openai.router)
    app.include_router(ollama.router)
    task_router, app.state.task_routes = tasks.build_router()
    app.include_router(task_router)
    from fastapi import Depends

    from plait.serve.deps import require
    from plait.serve.openai_schema import ERRORS
    from plait.workflows.router import workflow_router

    app.include_router(workflow_router(admin=[Depends(require("admin"))]), tags=["Workflows"], responses=ERRORS)
    from plait.workflows.today_router import today_router

    app.include_router(today_router(admin=[Depends(require("admin"))]), tags=["Workflows"], responses=ERRORS)
    for api in (conversations.router, index.router, jobs.router, models.router, settings_routes.router,
                security_routes.router, web.api):
        app.include_router(api, responses=ERRORS)
    app.include_router(web.router)  # the page itself: /, /static, /signin

    # Added innermost first: in Starlette the middleware added last is the outermost. So a request meets the
    # access log, then the guard, CORS and the body-size limit; the access log sees every response,
    # including the guard's refusals and a 413 from the size limit.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "OPTIONS"], allow_headers=["Authorization", "Content-Type"])
    # The guard refuses foreign Host names and cross-site origins before anything else runs (but inside the
    # access log, added after it, which records the refusal).
    app.add_middleware(RequestGuard, trusted=trusted_names(settings.host, settings.trusted_hosts),
                       origins=settings.cors_origins)
    app.add_middleware(AccessLog, metrics=ctx.metrics, audit=lambda: ctx.audit)
    return app


def _warm_redaction() -> None:
    from plait.errors import MissingDependency
    from plait.security.pii import warm_up

    try:
        warm_up()
    except MissingDependency:
        pass  # redaction says what is missing when it is first needed


def _preload(runtime: Runtime, name: str) -> None:
    import logging

    try:
        runtime.pool.get(name)
    except Exception as exc:  # noqa: BLE001 - a model that fails to load fails again, visibly, on request
        logging.getLogger("plait.serve").warning("could not preload model %s: %s", name, exc)
