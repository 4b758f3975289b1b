"""The ``adapted`` backend: models made by ``plait tune`` (their loading lives in plait.adapt.serving)."""

from __future__ import annotations

from plait.models.base import Model
from plait.models.spec import ModelSpec
from plait.settings import Settings


def load(spec: ModelSpec, settings: Settings) -> Model:
    from plait.adapt.serving import load as load_adapted

    return load_adapted(spec, settings)
