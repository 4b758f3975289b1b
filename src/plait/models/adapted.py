"""The ``adapted`` backend: models made by ``plait tune`` (their loading lives in plait.adapt.serving)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from plait.models.base import Model
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    from plait.models.loading import Models


def load(spec: ModelSpec, settings: Settings, models: Models) -> Model:
    from plait.adapt.serving import load as load_adapted

    return load_adapted(spec, settings, models)
