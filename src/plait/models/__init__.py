"""Models: interfaces, the catalog and loading. Backends live in their own modules, imported lazily."""

from plait.models.base import (
    Completion,
    Delta,
    Embedder,
    GenerationOptions,
    GenerationRequest,
    Message,
    Model,
    TextGenerator,
    Usage,
)
from plait.models.catalog import Catalog, register_builtin
from plait.models.loading import ModelPool, load_model, register_backend
from plait.models.spec import ModelSpec

__all__ = [
    "Catalog", "Completion", "Delta", "Embedder", "GenerationOptions", "GenerationRequest", "Message",
    "Model", "ModelPool", "ModelSpec", "TextGenerator", "Usage", "load_model", "register_backend",
    "register_builtin",
]
