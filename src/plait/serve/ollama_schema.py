"""Request and response models of the Ollama-compatible routes (/api/...)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plait.errors import InputError
from plait.models.base import GenerationOptions, Message
from plait.serve.errors import error_responses
from plait.tasks.generate import MAX_MESSAGES, check_prompt_size

SEED_MAX = 2**32 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OllamaOptions(BaseModel):
    """Ollama's model options. Those plait applies are listed; Ollama ignores options a runner does not
    know, and clients send many (num_ctx, num_gpu…), so unknown ones are accepted and ignored here too."""

    model_config = ConfigDict(extra="ignore")

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    num_predict: int | None = Field(None, ge=-2, le=1_000_000, description="tokens to generate; -1 or -2: no cap")
    stop: list[str] | None = Field(None, max_length=16)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)


class OllamaMessage(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str = ""
    images: list[str] | None = None
    thinking: str | None = None

    def to_message(self) -> Message:
        if self.images:
            raise InputError("images are not supported by this model; send text only")
        return Message(self.role, self.content)


Format = Literal["", "json"] | dict[str, Any] | None


class _Generation(_Strict):
    model: str = Field(min_length=1, max_length=200)
    stream: bool = True
    format: Format = None
    options: OllamaOptions | None = None
    keep_alive: str | float | None = None
    think: bool | None = None

    def generation_options(self, context_length: int) -> GenerationOptions:
        o = self.options or OllamaOptions.model_validate({})
        max_tokens = o.num_predict
        if max_tokens is not None and max_tokens < 0:
            max_tokens = context_length  # "no cap": the context window is the cap
        elif max_tokens == 0:
            max_tokens = None
        fmt = self.format
        return GenerationOptions(
            max_tokens=max_tokens, temperature=o.temperature, top_p=o.top_p,
            stop=tuple(s for s in o.stop or () if s), seed=o.seed,
            json_schema=fmt if isinstance(fmt, dict) else None, json_object=fmt == "json",
        )


class ChatRequest(_Generation):
    messages: list[OllamaMessage] = Field(default_factory=list, max_length=MAX_MESSAGES)

    @field_validator("messages")
    @classmethod
    def _size(cls, value: list[OllamaMessage]) -> list[OllamaMessage]:
        check_prompt_size([m.content or "" for m in value])
        return value

    tools: list[dict[str, Any]] | None = Field(None, max_length=0, description="not supported")


class GenerateRequest(_Generation):
    prompt: str = ""
    system: str | None = None
    raw: bool = False
    suffix: str | None = Field(None, max_length=0, description="not supported")
    template: str | None = Field(None, max_length=0, description="not supported")
    context: list[int] | None = Field(None, max_length=0,
                                      description="not supported: send the conversation to /api/chat")
    images: list[str] | None = Field(None, max_length=0, description="not supported")

    @model_validator(mode="after")
    def _size(self) -> GenerateRequest:
        check_prompt_size([self.prompt, self.system])
        return self


class EmbedRequest(_Strict):
    model: str = Field(min_length=1, max_length=200)
    input: str | Annotated[list[str], Field(min_length=1, max_length=2048)] = Field(
        description="a text or a list of up to 2048 texts")
    truncate: bool = True
    options: OllamaOptions | None = None
    keep_alive: str | float | None = None
    dimensions: int | None = Field(None, ge=1)

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class LegacyEmbeddingRequest(_Strict):
    model: str = Field(min_length=1, max_length=200)
    prompt: str
    options: OllamaOptions | None = None
    keep_alive: str | float | None = None


class ShowRequest(_Strict):
    model: str = Field(min_length=1, max_length=200)
    verbose: bool | None = None


# Responses ---------------------------------------------------------------------------------------------

class ModelDetails(BaseModel):
    parent_model: str = ""
    format: str
    family: str
    families: list[str]
    parameter_size: str = ""
    quantization_level: str = ""


class TagModel(BaseModel):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: ModelDetails


class Tags(BaseModel):
    models: list[TagModel]


class RunningModel(BaseModel):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: str
    size_vram: int = 0


class Running(BaseModel):
    models: list[RunningModel]


class ShowResponse(BaseModel):
    license: str
    modelfile: str
    parameters: str
    template: str
    details: ModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class Version(BaseModel):
    version: str


class OllamaMessageOut(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatResponse(BaseModel):
    model: str
    created_at: str
    message: OllamaMessageOut
    done: bool
    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class GenerateResponse(BaseModel):
    model: str
    created_at: str
    response: str
    done: bool
    done_reason: str | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class EmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int = 0
    prompt_eval_count: int


class LegacyEmbeddingResponse(BaseModel):
    embedding: list[float]


class OllamaError(BaseModel):
    error: str


ERRORS = error_responses(OllamaError)
