"""Text generation and chat with the default (or a named) generation model."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from plait.models.base import (
    Completion,
    Delta,
    GenerationOptions,
    GenerationRequest,
    Message,
    TextGenerator,
)
from plait.runtime import Runtime, get_runtime


def _generator(model: str | TextGenerator | None, runtime: Runtime | None) -> TextGenerator:
    if isinstance(model, TextGenerator):
        return model
    rt = runtime or get_runtime()
    return rt.model(model or rt.settings.chat_model, TextGenerator)


def fit_history(messages: Sequence[Message], model: TextGenerator, reserve: int) -> list[Message]:
    """Drop the oldest turns (never system messages or the last one) until the conversation plus
    ``reserve`` tokens for the answer fits the model's context window."""
    if model.context_length is None:
        return list(messages)
    budget = model.context_length - reserve - 16  # room for the chat template's own tokens
    # Each message is tokenised once (re-counting the whole history after every drop was quadratic: a
    # request of 20,000 short messages took 10 s of CPU before it was refused).
    sizes = [model.count_tokens(m.content) + 4 for m in messages]
    total = sum(sizes)
    keep = [True] * len(messages)
    for i, message in enumerate(messages[:-1]):
        if total <= budget:
            break
        if message.role != "system":
            keep[i] = False
            total -= sizes[i]
    return [m for m, k in zip(messages, keep, strict=True) if k]


def generate_stream(prompt: str, *, model: str | TextGenerator | None = None,
                    options: GenerationOptions | None = None, runtime: Runtime | None = None,
                    request: GenerationRequest | None = None) -> Iterator[Delta]:
    """Complete ``prompt`` (no chat template), piece by piece. Pass ``request`` to keep a cancel handle."""
    req = request or GenerationRequest(prompt=prompt, options=options or GenerationOptions())
    return _generator(model, runtime).stream(req)


def generate(prompt: str, *, model: str | TextGenerator | None = None,
             options: GenerationOptions | None = None, runtime: Runtime | None = None) -> Completion:
    return _generator(model, runtime).complete(prompt, options)


def chat_stream(messages: Sequence[Message], *, model: str | TextGenerator | None = None,
                options: GenerationOptions | None = None, runtime: Runtime | None = None,
                request: GenerationRequest | None = None) -> Iterator[Delta]:
    """Answer the last message of a conversation with the model's own chat template, piece by piece."""
    req = request or GenerationRequest(messages=tuple(messages), options=options or GenerationOptions())
    return _generator(model, runtime).stream(req)


def chat(messages: Sequence[Message], *, model: str | TextGenerator | None = None,
         options: GenerationOptions | None = None, runtime: Runtime | None = None) -> Completion:
    return _generator(model, runtime).chat(messages, options)
