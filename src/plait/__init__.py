"""plait: local large-model capabilities in one person's daily work.

The public API. Importing plait loads no heavy library; models load on first use.

    >>> import plait
    >>> plait.generate("Write a haiku about tea").text          # default chat model
    >>> plait.embed(["first text", "second text"]).shape         # (2, 384)
"""

from plait.errors import (
    BackendError,
    CapabilityError,
    CatalogError,
    ConfigError,
    InputError,
    MissingDependency,
    ModelError,
    ModelFileError,
    ModelNotFound,
    PlaitError,
    StoreError,
)
from plait.models import (
    Catalog,
    Completion,
    Delta,
    Embedder,
    GenerationOptions,
    GenerationRequest,
    Message,
    Model,
    ModelPool,
    ModelSpec,
    TextGenerator,
    Usage,
)
from plait.runtime import Runtime, get_runtime, set_runtime
from plait.settings import Settings, load_settings
from plait.tasks import chat, chat_stream, embed, generate, generate_stream

__version__ = "0.1.0"

__all__ = [
    "BackendError", "CapabilityError", "Catalog", "CatalogError", "Completion", "ConfigError", "Delta",
    "Embedder", "GenerationOptions", "GenerationRequest", "InputError", "Message", "MissingDependency",
    "Model", "ModelError", "ModelFileError", "ModelNotFound", "ModelPool", "ModelSpec", "PlaitError",
    "Runtime", "Settings", "StoreError", "TextGenerator", "Usage", "__version__", "chat", "chat_stream",
    "embed", "generate", "generate_stream", "get_runtime", "load_settings", "set_runtime",
]
