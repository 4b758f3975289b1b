"""The task routes, one declaration each (see :mod:`plait.serve.routes.tasks`).

A declaration imports its task module inside the function, so a missing module only means a missing
route. Requests are pydantic models with ``extra="forbid"``; responses are the task's own result types.
File inputs (images, audio) are base64 content in the request, never paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plait.errors import BackendError
from plait.runtime import Runtime
from plait.serve.errors import ApiError
from plait.serve.routes.tasks import Batched, TaskSpec, decode_base64, task_route

TEXT_LIMIT = 2_000_000  # characters; the body-size limit usually bites first


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


@task_route("summarize")
def summarize() -> TaskSpec:
    from plait.tasks.summarize import Summary, SummaryOptions, summarize

    class SummarizeRequest(SummaryOptions):
        text: str = Field(min_length=1, max_length=TEXT_LIMIT, description="the text to summarise")

    def call(body: SummarizeRequest, rt: Runtime) -> Summary:
        return summarize(body.text, method=body.method, style=body.style, sentences=body.sentences,
                         words=body.words, model=body.model, runtime=rt)

    def models(body: SummarizeRequest, s: Any) -> list[str | None]:
        return [body.model or (s.embed_model if body.method == "extractive" else s.chat_model)]

    # Abstractive summaries decode greedily (temperature 0, fixed seed): both methods are repeatable.
    return TaskSpec(SummarizeRequest, Summary, call, models=models,
                    summary="Summarise a text: extractive (sentences chosen by centrality) or abstractive")


@task_route("extract")
def extract() -> TaskSpec:
    from plait.tasks.extract import KINDS, Extraction, Kind, Prefer, Structured, extract, extract_json

    class ExtractRequest(_Request):
        text: str = Field(min_length=1, max_length=TEXT_LIMIT)
        kinds: list[Kind] | None = Field(None, description=f"extractors to run (default all: {', '.join(KINDS)})")
        reference: datetime | None = Field(None, description="resolve relative dates ('Friday') from this moment")
        prefer: Prefer | None = None
        labels: list[str] | None = Field(None, description="only these entity labels (PERSON, ORG…)")
        json_schema: dict[str, Any] | None = Field(
            None, description="fill this JSON schema with the chat model instead of running the extractors")
        instructions: str | None = Field(None, max_length=2000, description="extra guidance for schema extraction")
        model: str | None = Field(None, description="chat model for schema extraction")

        @field_validator("reference", mode="before")
        @classmethod
        def _iso(cls, value: Any) -> Any:
            # pydantic would also take a number as a Unix time; the API documents an ISO 8601 string.
            if value is not None and not isinstance(value, str | datetime):
                raise ValueError("give an ISO 8601 date-time, e.g. 2026-03-05T09:00:00")
            return value

    def call(body: ExtractRequest, rt: Runtime) -> Extraction | Structured:
        if body.json_schema is None:
            return extract(body.text, body.kinds, reference=body.reference, prefer=body.prefer, labels=body.labels)
        try:
            return extract_json(body.text, body.json_schema, instructions=body.instructions, model=body.model,
                                runtime=rt)
        except BackendError as exc:  # the model's answers never fit the schema: say so, as a 422
            raise ApiError(422, str(exc), code="model_output_invalid", param="json_schema") from exc

    def models(body: ExtractRequest, s: Any) -> list[str | None]:
        return [body.model or s.chat_model] if body.json_schema is not None else []

    return TaskSpec(ExtractRequest, Extraction | Structured, call, models=models,
                    summary="Entities, dates, contacts, amounts and action items; or a JSON schema filled in")


@task_route("sentiment")
def sentiment() -> TaskSpec:
    from plait.tasks.sentiment import Method, Sentiment, sentiment

    class SentimentRequest(_Request):
        text: str = Field(min_length=1, max_length=TEXT_LIMIT)
        method: Method = "vader"
        model: str | None = Field(None, description="embedder for method 'embedding'")

    def call(body: SentimentRequest, rt: Runtime) -> Sentiment:
        return sentiment(body.text, method=body.method, model=body.model, runtime=rt)

    def models(body: SentimentRequest, s: Any) -> list[str | None]:
        return [body.model or s.embed_model] if body.method == "embedding" else []

    return TaskSpec(SentimentRequest, Sentiment, call, models=models,
                    summary="Sentiment of a text and of each of its sentences")


@task_route("see")
def see() -> TaskSpec:
    from plait.tasks.see import DEFAULT_MODEL, SeeResult, see

    class SeeRequest(_Request):
        image: str = Field(min_length=1, description="the image file's content, base64 (or a data: URL)")
        k: int = Field(5, ge=1, le=50, description="how many classes")
        model: str | None = None

    def call(body: SeeRequest, rt: Runtime) -> SeeResult:
        return see(decode_base64(body.image, "image"), k=body.k, model=body.model, runtime=rt)

    return TaskSpec(SeeRequest, SeeResult, call, models=lambda body, s: [body.model or DEFAULT_MODEL],
                    summary="What is in a picture: the most likely classes")


@task_route("hear")
def hear() -> TaskSpec:
    from plait.tasks.hear import DEFAULT_MODEL, HearResult, hear

    class HearRequest(_Request):
        audio: str = Field(min_length=1, description="a WAV file's content, base64 (or a data: URL)")
        model: str | None = None

    def call(body: HearRequest, rt: Runtime) -> HearResult:
        return hear(decode_base64(body.audio, "audio"), model=body.model, runtime=rt)

    return TaskSpec(HearRequest, HearResult, call, models=lambda body, s: [body.model or DEFAULT_MODEL],
                    summary="Speech to text")


@task_route("speak")
def speak() -> TaskSpec:
    from plait.tasks.speak import MAX_CHARS, MAX_RATE, MIN_RATE, Speech, speak

    class SpeakRequest(_Request):
        text: str = Field(min_length=1, max_length=MAX_CHARS)
        voice: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_+-]+$", description="e.g. en-us")
        rate: int | None = Field(None, ge=MIN_RATE, le=MAX_RATE, description="words per minute")
        pitch: int | None = Field(None, ge=0, le=99)

    def call(body: SpeakRequest, rt: Runtime) -> Speech:
        return speak(body.text, voice=body.voice, rate=body.rate, pitch=body.pitch)

    return TaskSpec(SpeakRequest, bytes, call, media_type="audio/wav", render=lambda speech: speech.wav_bytes(),
                    summary="Text to speech: a WAV file")


@task_route("classify")
def classify() -> TaskSpec:
    from plait.tasks.classifiers import Classification, Classifier
    from plait.tasks.classify import ClassifyConfig

    class ClassifyRequest(ClassifyConfig):
        texts: str | list[str] = Field(description="a text, or a list of up to 1000 texts")

        def items(self) -> list[str]:
            return [self.texts] if isinstance(self.texts, str) else list(self.texts)

    def group(body: ClassifyRequest) -> str:
        # Requests with the same set-up share a classifier and are classified in one batch.
        return body.model_copy(update={"texts": ""}).model_dump_json()

    def runner(body: ClassifyRequest, rt: Runtime) -> Callable[[list[str]], Sequence[Classification]]:
        config = ClassifyConfig.model_validate(body.model_dump(exclude={"texts"}))
        built: list[Classifier] = []

        def run(texts: list[str]) -> Sequence[Classification]:
            if not built:  # built in the worker thread, on the first batch (it may embed examples)
                built.append(config.build(rt))
            return built[0].classify(texts, threshold=config.threshold)
        return run

    def answer(body: ClassifyRequest, results: list[Classification]) -> Classification | list[Classification]:
        return results[0] if isinstance(body.texts, str) else results

    def items(body: ClassifyRequest) -> list[str]:
        texts = body.items()
        if not texts or len(texts) > 1000:
            raise ApiError(400, "texts: give 1 to 1000 texts", param="texts")
        return texts

    def models(body: ClassifyRequest, s: Any) -> list[str | None]:
        if body.classifier:
            return [body.classifier]
        return [body.model or (s.chat_model if body.method == "llm" else s.embed_model)]

    return TaskSpec(ClassifyRequest, Classification | list[Classification],
                    batched=Batched(items, group, runner, answer), models=models,
                    summary="Put texts into labels: zero-shot, few-shot from examples, or a trained classifier")


@task_route("recommend")
def recommend() -> TaskSpec:
    from plait.models.recommender import Strategy
    from plait.tasks.recommend import Recommendations, recommend

    class RecommendRequest(_Request):
        model: str = Field(min_length=1, description="a trained recommender (`plait recommend train`)")
        user: str | None = Field(None, description="a user the recommender knows; none: from ratings only")
        k: int = Field(10, ge=1, le=1000)
        strategy: Strategy = "hybrid"
        ratings: dict[str, float] | None = Field(None, description="item → rating, added to the user's history")
        include_rated: bool = False

    def call(body: RecommendRequest, rt: Runtime) -> Recommendations:
        return recommend(body.user, model=body.model, k=body.k, strategy=body.strategy, ratings=body.ratings,
                         include_rated=body.include_rated, runtime=rt)

    return TaskSpec(RecommendRequest, Recommendations, call, models=lambda body, s: [body.model],
                    summary="The best items for a user from a trained recommender")


@task_route("search")
def search() -> TaskSpec:
    from plait.index.filters import SearchFilters
    from plait.index.retrieval import Mode, SearchResults
    from plait.tasks.search import search

    class SearchRequest(_Request):
        query: str = Field(min_length=1, max_length=2000)
        k: int = Field(10, ge=1, le=100)
        mode: Mode = "hybrid"
        filters: SearchFilters | None = None
        per_document: bool = True
        mmr: float | None = Field(None, ge=0, le=1, description="re-order for variety (λ, e.g. 0.7)")

    def call(body: SearchRequest, rt: Runtime) -> SearchResults:
        return search(body.query, k=body.k, mode=body.mode, filters=body.filters, per_document=body.per_document,
                      mmr=body.mmr, runtime=rt)

    # The index changes as files are added: search answers are not cached.
    return TaskSpec(SearchRequest, SearchResults, call, scope="index", cacheable=lambda body: False,
                    summary="Search the personal index by keyword, meaning or both")


@task_route("ask")
def ask() -> TaskSpec:
    from plait.serve.routes.ask import declare

    return declare()


# `plan` has no task module yet: its route is one more declaration here once plait.tasks.plan exists.


@task_route("explain")
def explain() -> TaskSpec:
    from plait.tasks.explain import Explanation, explain

    class ExplainRequest(_Request):
        model: str = Field(min_length=1, description="a classifier from the catalog (e.g. made by `plait tune`)")
        text: str = Field(min_length=1, max_length=100_000)
        label: str | None = Field(None, description="explain this label (default: the predicted one)")
        method: Literal["auto", "integrated-gradients", "occlusion"] = "auto"
        steps: int = Field(32, ge=2, le=256, description="integrated-gradients steps")

    def call(body: ExplainRequest, rt: Runtime) -> Explanation:
        return explain(body.model, body.text, label=body.label, method=body.method, steps=body.steps, runtime=rt)

    return TaskSpec(ExplainRequest, Explanation, call, models=lambda body, s: [body.model],
                    summary="Which words drove a classifier's decision (integrated gradients or occlusion)")
