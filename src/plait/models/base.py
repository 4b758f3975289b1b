"""The model interfaces: one small abstract class per capability, one abstract method each.

A backend implements ``stream`` (generation) or ``embed_batch`` (embeddings); the base classes build the
conveniences on top (whole answers, chat vs completion, batching with length sorting, normalisation), so
every backend gets them identically.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from plait.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from plait.models.spec import ModelSpec

Role = Literal["system", "user", "assistant"]
EmbedKind = Literal["query", "document"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling and decoding options; ``None`` means the settings' default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Constrained decoding: the output must match this JSON schema (backends compile it to a grammar).
    json_schema: dict[str, Any] | None = None
    json_object: bool = False  # any JSON object (OpenAI's response_format json_object)
    # Added to the logits of these token ids before sampling (OpenAI's logit_bias; -100 all but bans a token).
    logit_bias: dict[int, float] | None = None

    def with_defaults(self, max_tokens: int, temperature: float) -> GenerationOptions:
        return replace(
            self,
            max_tokens=self.max_tokens if self.max_tokens is not None else max_tokens,
            temperature=self.temperature if self.temperature is not None else temperature,
        )


@dataclass(frozen=True)
class GenerationRequest:
    """Either a chat (``messages``) or a plain completion (``prompt``)."""

    messages: tuple[Message, ...] | None = None
    prompt: str | None = None
    options: GenerationOptions = field(default_factory=GenerationOptions)
    # Set from another thread (Ctrl-C handler, a disconnected HTTP client) to stop generating.
    cancel: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a GenerationRequest needs exactly one of messages or prompt")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    # Of the prompt tokens, those the backend did not read again: held in its cache from an earlier request.
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Delta:
    """A piece of streamed output. The last one carries ``finish_reason`` and ``usage``."""

    text: str
    finish_reason: FinishReason | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: FinishReason
    usage: Usage
    model: str = ""  # the catalog name of the model that wrote it


_POOL_LOCK = threading.Lock()  # guards the lazy creation of each embedder's batch threads


class Model(ABC):  # noqa: B024 - a base with no abstract method of its own; capabilities add one each
    """Anything loaded from the catalog. ``close`` frees memory; the pool calls it on unload."""

    spec: ModelSpec

    def close(self) -> None:  # noqa: B027 - most backends free memory when dropped
        """Release native resources. Default: nothing to do."""


class TextGenerator(Model):
    """Chat and completion. Backends implement :meth:`stream`; everything else is built on it."""

    default_max_tokens: int = 512
    default_temperature: float = 0.7
    context_length: int | None = None  # tokens the model can attend to, where known
    # Requests the backend decodes at once (llama.cpp's slots); the server admits this many per model.
    parallel: int = 1

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text``; backends with a tokenizer override this rough estimate (~4 chars a token)."""
        return len(text) // 4 + 1

    @abstractmethod
    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        """Yield the answer piece by piece; stop early when ``request.cancel`` is set.

        The last delta has ``finish_reason`` set and carries ``usage``.
        """

    def run(self, request: GenerationRequest) -> Completion:
        parts: list[str] = []
        finish: FinishReason = "stop"
        usage = Usage(0, 0)
        for delta in self.stream(request):
            parts.append(delta.text)
            if delta.finish_reason:
                finish = delta.finish_reason
            if delta.usage:
                usage = delta.usage
        spec = getattr(self, "spec", None)
        return Completion("".join(parts), finish, usage, model=spec.name if spec is not None else "")

    def chat(self, messages: Sequence[Message], options: GenerationOptions | None = None) -> Completion:
        return self.run(GenerationRequest(messages=tuple(messages), options=options or GenerationOptions()))

    def complete(self, prompt: str, options: GenerationOptions | None = None) -> Completion:
        return self.run(GenerationRequest(prompt=prompt, options=options or GenerationOptions()))

    def resolved(self, options: GenerationOptions) -> GenerationOptions:
        return options.with_defaults(self.default_max_tokens, self.default_temperature)


class Embedder(Model):
    """Text embeddings. Backends implement :meth:`embed_batch`; rows come back L2-normalised."""

    dimensions: int
    batch_size: int = 64
    # Batches run at once by embed_many; >1 only for backends whose embed_batch is thread-safe and
    # releases the GIL (ONNX Runtime sessions), where it beats one multi-threaded call on small models.
    concurrency: int = 1

    @abstractmethod
    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        """Embed one batch: a float32 array of shape (len(texts), dimensions). Need not be normalised."""

    def embed(self, text: str, kind: EmbedKind = "document") -> np.ndarray:
        return self.embed_many([text], kind=kind)[0]

    def _embed_pool(self) -> ThreadPoolExecutor:
        """Threads that run batches at once, made on first use and kept: a server calls embed_many
        hundreds of times a second, and starting threads each time costs more than a short batch."""
        pool: ThreadPoolExecutor | None = self.__dict__.get("_pool")
        if pool is None:
            with _POOL_LOCK:
                pool = self.__dict__.get("_pool")
                if pool is None:
                    pool = self.__dict__["_pool"] = ThreadPoolExecutor(self.concurrency,
                                                                       thread_name_prefix="plait-embed")
        return pool

    def embed_many(self, texts: Sequence[str], kind: EmbedKind = "document", *,
                   batch_size: int | None = None,
                   progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed any number of texts: (n, dimensions) float32, unit rows, in the input order.

        Texts are batched by length (longest first) so each batch pads to similar lengths, which is
        where most of the speed of batched transformer inference comes from; ``progress`` is called with
        the number of texts finished after each batch.
        """
        import numpy as np

        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise InputError(f"text #{i} is {type(text).__name__}, not a string")
        size = batch_size or self.batch_size
        if self.concurrency > 1:
            # A batch smaller than batch_size is still split, so every session works on it: a server's
            # micro-batch of 15 texts would otherwise run on one session while the others sit idle.
            size = min(size, -(-len(texts) // self.concurrency))
        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batches = [order[start:start + size] for start in range(0, len(order), size)]

        def run(idx: list[int]) -> tuple[list[int], np.ndarray]:
            return idx, self.embed_batch([texts[i] for i in idx], kind=kind)

        if self.concurrency > 1 and len(batches) > 1:
            for idx, vectors in self._embed_pool().map(run, batches):
                out[idx] = vectors
                if progress:
                    progress(len(idx))
        else:
            for idx in batches:
                out[idx] = run(idx)[1]
                if progress:
                    progress(len(idx))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out
