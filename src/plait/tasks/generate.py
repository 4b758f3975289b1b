"""generate and chat: text from the default (or a named) generation model.

One rule decides how a prompt reaches a model, the same from Python, the CLI, the OpenAI and Ollama routes
and workflows (:func:`prompt_request`): a chat model answers a prompt as one user turn in its own chat
template (what Ollama's generate does), after an optional system message; ``raw`` (or a model that cannot
chat) continues the prompt as plain text. A conversation that outgrows the model's context loses its
oldest turns rather than failing (:func:`chat_request`), wherever it comes from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from plait.models.base import (
    Completion,
    Delta,
    FinishReason,
    GenerationOptions,
    GenerationRequest,
    Message,
    TextGenerator,
    Usage,
)
from plait.models.spec import ModelSpec
from plait.runtime import Runtime, get_runtime
from plait.tasks.registry import Task, TaskContext, TaskRequest

# One set of limits for every door to generation (this task, the OpenAI and Ollama routes, conversations),
# checked by the request models before anything is tokenised, so a request cannot make the server count
# tokens for minutes. Far beyond any context window plait's models have (a message is at least one token).
MAX_MESSAGES = 1_000
MAX_PROMPT_CHARS = 1_000_000  # all of one request's prompt texts together (messages, or prompt and system)


def check_prompt_size(texts: Iterable[str | None]) -> None:
    """ValueError (a validation error, in a request model) when ``texts`` together exceed the limit."""
    total = sum(len(t or "") for t in texts)
    if total > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt holds {total:,} characters; at most {MAX_PROMPT_CHARS:,} are accepted")


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
    kept = list(messages)
    sizes = [model.count_tokens(m.content) + 4 for m in kept]  # counted once: a long history is slow to count
    total = sum(sizes)
    while total > budget:
        droppable = next((i for i, m in enumerate(kept[:-1]) if m.role != "system"), None)
        if droppable is None:
            break
        total -= sizes.pop(droppable)
        del kept[droppable]
    return kept


def prompt_request(model: ModelSpec, prompt: str, *, raw: bool = False, system: str | None = None,
                   options: GenerationOptions | None = None) -> GenerationRequest:
    """The request for a prompt: one user turn in a chat model's template, or plain text (see module doc)."""
    opts = options or GenerationOptions()
    if raw or "chat" not in model.capabilities:
        return GenerationRequest(prompt=prompt, options=opts)
    messages = ([Message("system", system)] if system else []) + [Message("user", prompt)]
    return GenerationRequest(messages=tuple(messages), options=opts)


def chat_request(model: TextGenerator, messages: Sequence[Message], *,
                 options: GenerationOptions | None = None, default_max_tokens: int | None = None
                 ) -> GenerationRequest:
    """The request for a conversation, its oldest turns dropped when it would not fit the context."""
    opts = options or GenerationOptions()
    reserve = opts.max_tokens or default_max_tokens or model.default_max_tokens
    return GenerationRequest(messages=tuple(fit_history(messages, model, reserve)), options=opts)


def generate_stream(prompt: str, *, model: str | TextGenerator | None = None,
                    options: GenerationOptions | None = None, raw: bool = False, system: str | None = None,
                    runtime: Runtime | None = None) -> GenerationStream:
    """Answer ``prompt`` piece by piece (see :func:`prompt_request`); iterate for deltas. Setting
    ``.request.cancel`` from another thread stops it."""
    gen = _generator(model, runtime)
    return GenerationStream(gen, prompt_request(gen.spec, prompt, raw=raw, system=system, options=options))


def generate(prompt: str, *, model: str | TextGenerator | None = None, options: GenerationOptions | None = None,
             raw: bool = False, system: str | None = None, runtime: Runtime | None = None) -> Completion:
    """The whole answer to ``prompt``: a chat model's reply, or with ``raw`` a plain continuation."""
    return generate_stream(prompt, model=model, options=options, raw=raw, system=system, runtime=runtime).run()


def chat_stream(messages: Sequence[Message], *, model: str | TextGenerator | None = None,
                options: GenerationOptions | None = None, runtime: Runtime | None = None) -> GenerationStream:
    """Answer the last message of a conversation with the model's own chat template, piece by piece."""
    rt = runtime or (None if isinstance(model, TextGenerator) else get_runtime())
    gen = _generator(model, rt)
    return GenerationStream(gen, chat_request(gen, messages, options=options,
                                              default_max_tokens=rt.settings.max_tokens if rt else None))


def chat(messages: Sequence[Message], *, model: str | TextGenerator | None = None,
         options: GenerationOptions | None = None, runtime: Runtime | None = None) -> Completion:
    return chat_stream(messages, model=model, options=options, runtime=runtime).run()


@dataclass
class GenerationStream:
    """A generation under way: iterate for its deltas, then ``result()`` is the whole completion."""

    generator: TextGenerator
    request: GenerationRequest
    _parts: list[str] = field(default_factory=list)
    _finish: FinishReason = "stop"
    _usage: Usage = field(default_factory=lambda: Usage(0, 0))

    @property
    def model(self) -> str:
        return self.generator.spec.name

    def events(self) -> list[dict[str, Any]]:
        return []

    def __iter__(self) -> Iterator[Delta]:
        stream = self.generator.stream(self.request)
        try:
            for delta in stream:
                self._parts.append(delta.text)
                if delta.finish_reason:
                    self._finish = delta.finish_reason
                if delta.usage:
                    self._usage = delta.usage
                yield delta
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # a consumer that stops early (Ctrl-C) frees the model at once

    def result(self) -> Completion:
        return Completion("".join(self._parts), self._finish, self._usage, model=self.model)

    def run(self) -> Completion:
        for _ in self:
            pass
        return self.result()


# --- the tasks ----------------------------------------------------------------------------------------

class SamplingFields(TaskRequest):
    """Decoding options every generation request takes; unset means the settings' default."""

    max_tokens: int | None = Field(None, ge=1, le=1_000_000, description="cap on generated tokens")
    temperature: float | None = Field(None, ge=0, le=2, description="0 for deterministic output")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling")
    seed: int | None = Field(None, description="fixes the sampler for reproducible output")
    stop: list[str] = Field(default_factory=list, max_length=16, description="stop at any of these texts")

    def options(self) -> GenerationOptions:
        return GenerationOptions(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                                 seed=self.seed, stop=tuple(self.stop))


class GenerateRequest(SamplingFields):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="the prompt")
    model: str | None = Field(None, description="a generation model (default: the chat_model setting)")
    system: str | None = Field(None, max_length=MAX_PROMPT_CHARS, description="system prompt (chat models)")
    raw: bool = Field(False, description="continue the prompt as plain text: no chat template")

    @model_validator(mode="after")
    def _size(self) -> GenerateRequest:
        check_prompt_size([self.prompt, self.system])
        return self


class ChatMessage(TaskRequest):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=MAX_PROMPT_CHARS)


class ChatRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES,
                                        description="the conversation so far; the last message is answered")
    model: str | None = Field(None, description="a chat model (default: the chat_model setting)")

    @field_validator("messages")
    @classmethod
    def _size(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        check_prompt_size([m.content for m in value])
        return value

    def conversation(self) -> list[Message]:
        return [Message(m.role, m.content) for m in self.messages]


def _generate_stream(request: GenerateRequest, ctx: TaskContext) -> GenerationStream:
    return generate_stream(request.prompt, model=request.model, options=request.options(), raw=request.raw,
                           system=request.system, runtime=ctx.runtime)


def _chat_stream(request: ChatRequest, ctx: TaskContext) -> GenerationStream:
    return chat_stream(request.conversation(), model=request.model, options=request.options(),
                       runtime=ctx.runtime)


GENERATE = Task(
    name="generate", summary="Answer a prompt with a generation model (a chat model's reply, or --raw text)",
    request=GenerateRequest, result=Completion, input="prompt", scope="chat",
    run=lambda request, ctx: _generate_stream(request, ctx).run(), stream=_generate_stream,
    models=lambda request, settings: [request.model or settings.chat_model],
)
CHAT = Task(
    name="chat", summary="Answer the last message of a conversation with a chat model",
    request=ChatRequest, result=Completion, input=None, scope="chat",
    run=lambda request, ctx: _chat_stream(request, ctx).run(), stream=_chat_stream,
    models=lambda request, settings: [request.model or settings.chat_model],
)
