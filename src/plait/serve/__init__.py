"""plait's HTTP server: OpenAI- and Ollama-compatible APIs and task routes, with batching, caching,
streaming, API keys and metrics. ``create_app(settings)`` builds the app; ``plait serve`` runs it.

Importing this package loads nothing heavy; FastAPI is imported by :func:`create_app`.
"""

from __future__ import annotations

from typing import Any

from plait.settings import Settings

__all__ = ["DEFAULT_PORT", "create_app"]

DEFAULT_PORT = 8434


def create_app(settings: Settings, **kwargs: Any) -> Any:
    from plait.serve.app import create_app as _create

    return _create(settings, **kwargs)
