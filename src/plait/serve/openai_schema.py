"""Request and response models of the OpenAI-compatible routes.

Requests accept the parameters OpenAI documents for these endpoints. Unknown fields are refused (400)
rather than silently ignored, and documented parameters plait cannot honour (several choices, tools,
logprobs, penalties) are refused with a message saying so, instead of being dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plait.errors import InputError
from plait.models.base import FinishReason, GenerationOptions, Message
from plait.serve.errors import error_responses
from plait.tasks.generate import MAX_MESSAGES, check_prompt_size

SEED_MAX = 2**32 - 1  # llama.cpp seeds are unsigned 32-bit


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def to_message(self) -> Message:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        return Message("system" if self.role == "developer" else self.role, text)


class StreamOptions(_Strict):
    include_usage: bool = False


class JsonSchemaFormat(_Strict):
    name: str = Field("response", max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type json_schema needs a json_schema object")
        return self


class _Sampling(_Strict):
    model: str | None = Field(None, min_length=1, max_length=200,
                              description="a model name from /v1/models (default: the chat_model setting)")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    stop: str | list[str] | None = Field(None, description="up to 4 texts that end the answer")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="makes sampling repeatable (and cacheable)")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="only 1 is supported")
    user: str | None = None
    logit_bias: dict[str, float] | None = Field(None, description="token id (of the model's vocabulary) to a bias "
                                                "from -100 to 100, added to its logit before sampling")
    frequency_penalty: float | None = Field(None, ge=0, le=0, description="not supported: 0 or absent")
    presence_penalty: float | None = Field(None, ge=0, le=0, description="not supported: 0 or absent")

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for token, bias in (value or {}).items():
            if not token.isdigit():
                raise ValueError(f"logit_bias keys are token ids (digits), not {token!r}")
            if not -100 <= bias <= 100:
                raise ValueError(f"logit_bias for token {token} is {bias}; give -100 to 100")
        return value

    def _biases(self) -> dict[int, float] | None:
        return {int(token): bias for token, bias in self.logit_bias.items()} if self.logit_bias else None

    def _stops(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4:
            raise InputError("stop: at most 4 stop sequences")
        return tuple(s for s in stops if s)


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)

    @field_validator("messages")
    @classmethod
    def _size(cls, value: list[ChatMessage]) -> list[ChatMessage]:
        check_prompt_size([m.content if isinstance(m.content, str) else "".join(p.text for p in m.content or [])
                           for m in value])
        return value

    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000)
    response_format: ResponseFormat | None = None
    logprobs: Literal[False] | None = Field(None, description="not supported: false or absent")

    @field_validator("logprobs", mode="before")
    @classmethod
    def _no_logprobs(cls, value: Any) -> Any:
        if value is True:
            raise ValueError("logprobs are not supported by this server")
        return value

    def options(self) -> GenerationOptions:
        fmt = self.response_format
        schema = fmt.json_schema.schema_ if fmt and fmt.type == "json_schema" and fmt.json_schema else None
        return GenerationOptions(
            max_tokens=self.max_completion_tokens or self.max_tokens, temperature=self.temperature,
            top_p=self.top_p, stop=self._stops(), seed=self.seed, logit_bias=self._biases(),
            json_schema=schema, json_object=bool(fmt and fmt.type == "json_object"),
        )

    def chat_messages(self) -> tuple[Message, ...]:
        return tuple(m.to_message() for m in self.messages)


class CompletionRequest(_Sampling):
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)] = Field(
        description="one prompt (a list must hold exactly one)")
    max_tokens: int | None = Field(16, ge=1, le=1_000_000)
    echo: bool = False
    raw: bool = Field(False, description="plait's extension: continue the prompt as plain text. By default a "
                      "chat model answers the prompt as one user turn of its chat template, as `plait generate` "
                      "and Ollama's /api/generate do")
    logprobs: int | None = Field(None, ge=0, le=0, description="not supported: 0 or absent")
    best_of: int | None = Field(None, ge=1, le=1)
    suffix: str | None = Field(None, max_length=0, description="not supported")

    @field_validator("prompt")
    @classmethod
    def _size(cls, value: str | list[str]) -> str | list[str]:
        check_prompt_size([value] if isinstance(value, str) else value)
        return value

    def prompt_text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        return self.prompt[0]

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > 1:
            raise ValueError("give one prompt; several prompts in one request are not supported")
        return value

    def options(self) -> GenerationOptions:
        return GenerationOptions(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                                 stop=self._stops(), seed=self.seed, logit_bias=self._biases())


class EmbeddingRequest(_Strict):
    model: str | None = Field(None, min_length=1, max_length=200,
                              description="a model name from /v1/models (default: the embed_model setting)")
    input: str | Annotated[list[str], Field(min_length=1, max_length=2048)] = Field(
        description="a text or a list of up to 2048 texts (token arrays are not supported)")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None

    @field_validator("input", mode="before")
    @classmethod
    def _texts_only(cls, value: Any) -> Any:
        if isinstance(value, list) and value and not isinstance(value[0], str):
            raise ValueError("token arrays are not supported; send the texts")
        if isinstance(value, list) and not value:
            raise ValueError("give at least one text")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


# Responses ---------------------------------------------------------------------------------------------

OpenAIFinish = Literal["stop", "length"]


def finish_reason(reason: FinishReason | str | None) -> OpenAIFinish:
    return "length" if reason == "length" else "stop"


class PromptTokensDetails(BaseModel):
    cached_tokens: int = Field(0, description="prompt tokens not read again: the model's cache held them")


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: OpenAIFinish
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str = Field(description="the model's catalog version")
    choices: list[ChatChoice]
    usage: UsageOut


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: OpenAIFinish
    logprobs: None = None


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionChoice]
    usage: UsageOut


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: UsageOut


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    capabilities: list[str] = Field(default_factory=list, description="what plait can do with it")
    description: str = ""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERRORS = error_responses(ErrorResponse)
