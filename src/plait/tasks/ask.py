"""Answer a question from the personal index, citing the passages the answer comes from.

The question is searched (hybrid, varied by MMR); passages whose meaning is close enough to the question
(cosine similarity of their embeddings, ``min_similarity``) become numbered sources, and the chat model
is asked to answer from them only, citing them as [1], [2]. When no passage is close enough the answer
says so without asking the model: a small model given unrelated text would answer anyway.

Small models often leave out the citations or add claims of their own, so plait also checks the answer:
each of its sentences is matched (by embedding similarity) with the closest source passage
(``Answer.attributions``), which shows which sources the answer really rests on and which sentences
rest on none.

The prompt is kept short for small models (SmolLM2 has a 2,048-token window and loses the thread in
long contexts): a few sources, each cut to the part around the words that matched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from pydantic import Field

from plait.errors import InputError
from plait.index.core import Index, open_index
from plait.index.filters import SearchFilters
from plait.index.retrieval import Hit, retrieve
from plait.models.base import Delta, GenerationOptions, GenerationRequest, Message, TextGenerator, Usage
from plait.runtime import Runtime, get_runtime
from plait.tasks.registry import Task, TaskContext, TaskRequest

PASSAGES = 4
PASSAGE_WORDS = 110
# Cosine similarity between an answer sentence and a source passage above which the sentence is taken
# to come from that passage.
ATTRIBUTION_SIMILARITY = 0.5
# Cosine similarity (all-MiniLM) below which a passage is not about the question. Measured on the Lee
# news articles (bench/index.py): questions about them have a best passage at 0.37–0.63, unrelated
# questions 0.12–0.24.
MIN_SIMILARITY = 0.3
DEFAULT_OPTIONS = GenerationOptions(max_tokens=256, temperature=0.2)
NOT_FOUND = "I don't know: nothing in your index is relevant enough to this question."

SYSTEM = ("Answer the question using only the numbered sources. After each fact, cite its source number "
          "in square brackets, like [1]. If the sources do not contain the answer, say you do not know. "
          "Be brief.")
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


@dataclass(frozen=True)
class Source:
    number: int
    path: str
    source: str
    title: str | None
    kind: str
    date: str | None
    sender: str | None
    heading: str | None
    excerpt: str  # the part of the passage given to the model
    chunk_id: int
    similarity: float


@dataclass(frozen=True)
class Attribution:
    """One sentence of the answer and the source passage closest to it in meaning (if close enough)."""

    sentence: str
    source: int | None  # source number, None when no source is close enough
    similarity: float


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    sources: list[Source]
    citations: list[int]  # source numbers the answer cites, in order of first citation
    found: bool  # False: no relevant passage, the model was not asked
    usage: Usage | None = None
    # Checked by plait, not the model: small models often leave out citations or add claims of their own.
    attributions: list[Attribution] = field(default_factory=list)

    @property
    def supported_by(self) -> list[int]:
        """Source numbers that some sentence of the answer is close to, in order."""
        return list(dict.fromkeys(a.source for a in self.attributions if a.source is not None))


def citations(text: str, count: int) -> list[int]:
    out: list[int] = []
    for group in _CITATION.findall(text):
        for number in re.split(r"\s*[,;]\s*", group):
            n = int(number)
            if 1 <= n <= count and n not in out:
                out.append(n)
    return out


def excerpt(hit: Hit, words: int = PASSAGE_WORDS) -> str:
    """At most ``words`` words of the passage, centred on its first matched word when it is longer."""
    parts = hit.text.split()
    if len(parts) <= words:
        return " ".join(parts)
    centre = 0
    if hit.snippet.highlights:
        first = hit.snippet.text[hit.snippet.highlights[0][0]:hit.snippet.highlights[0][1]].lower()
        centre = next((i for i, w in enumerate(parts) if first in w.lower()), 0)
    start = max(0, min(centre - words // 3, len(parts) - words))
    return ("… " if start else "") + " ".join(parts[start:start + words]) + (" …" if start + words < len(parts) else "")


def attribute(text: str, sources: list[Source], index: Index) -> list[Attribution]:
    """Each sentence of ``text`` with the source whose passage is closest in meaning to it."""
    from plait.readers.sentences import sentences

    parts = [p for p in (_CITATION.sub("", s).strip() for s in sentences(text)) if len(p.split()) >= 3]
    if not parts or not sources:
        return []
    stored = index.vectors().vectors_of([s.chunk_id for s in sources])
    numbered = [(s.number, stored[s.chunk_id]) for s in sources if s.chunk_id in stored]
    out = []
    for sentence, vector in zip(parts, index.embedder().embed_many(parts, kind="document"), strict=True):
        scored = [(float(vector @ v), n) for n, v in numbered]
        best, number = max(scored) if scored else (0.0, 0)
        out.append(Attribution(sentence, number if best >= ATTRIBUTION_SIMILARITY else None, round(best, 3)))
    return out


def prompt(question: str, sources: list[Source]) -> list[Message]:
    lines = []
    for s in sources:
        about = ", ".join(x for x in (s.title, s.sender, (s.date or "")[:10]) if x)
        lines.append(f"[{s.number}] {'(' + about + ') ' if about else ''}{s.excerpt}")
    user = "Sources:\n" + "\n\n".join(lines) + f"\n\nQuestion: {question}"
    return [Message("system", SYSTEM), Message("user", user)]


@dataclass
class AnswerStream:
    """The answer as it is generated. ``sources`` are known before the first piece; iterate for the
    pieces (``Delta``); ``answer`` is complete once iteration ends. Set ``request.cancel`` to stop."""

    question: str
    sources: list[Source]
    found: bool
    request: GenerationRequest | None
    _deltas: Iterator[Delta] | None
    _index: Index | None = None
    _parts: list[str] = field(default_factory=list)
    _usage: Usage | None = None
    _done: bool = False
    _answer: Answer | None = None
    model: str | None = None  # the chat model that writes the answer; None when none is asked

    def events(self) -> list[dict[str, object]]:
        """What a streamed answer tells before its text: the numbered sources."""
        return [{"type": "sources", "sources": [asdict(s) for s in self.sources]}]

    def result(self) -> Answer:
        return self.answer

    def __iter__(self) -> Iterator[Delta]:
        if self._deltas is None:
            if not self._done:
                self._done = True
                self._parts.append(NOT_FOUND)
                yield Delta(NOT_FOUND, finish_reason="stop")
            return
        for delta in self._deltas:
            self._parts.append(delta.text)
            if delta.usage:
                self._usage = delta.usage
            yield delta
        self._done = True

    @property
    def answer(self) -> Answer:
        if not self._done:
            for _ in self:
                pass
        if self._answer is None:
            text = "".join(self._parts).strip()
            cited = citations(text, len(self.sources)) if self.found else []
            checked = attribute(text, self.sources, self._index) if self.found and self._index else []
            self._answer = Answer(self.question, text, self.sources, cited, self.found, self._usage, checked)
        return self._answer


def ask_stream(question: str, *, k: int = PASSAGES, filters: SearchFilters | None = None,
               model: str | TextGenerator | None = None, options: GenerationOptions | None = None,
               min_similarity: float = MIN_SIMILARITY, runtime: Runtime | None = None) -> AnswerStream:
    question = " ".join(question.split())
    if not question:
        raise InputError("the question is empty")
    rt = runtime or get_runtime()
    index = open_index(rt)
    results = retrieve(index, question, k=k, mode="hybrid", filters=filters, per_document=False,
                       mmr_lambda=0.7)
    relevant = [h for h in results.hits if h.similarity is not None and h.similarity >= min_similarity]
    sources = [Source(n, h.path, h.source, h.title, h.kind, h.date, h.sender, h.heading, excerpt(h), h.chunk_id,
                      float(h.similarity or 0.0)) for n, h in enumerate(relevant, start=1)]
    if not sources:
        return AnswerStream(question, [], False, None, None)
    generator = model if isinstance(model, TextGenerator) else rt.model(model or rt.settings.chat_model, TextGenerator)
    request = GenerationRequest(messages=tuple(prompt(question, sources)), options=options or DEFAULT_OPTIONS)
    return AnswerStream(question, sources, True, request, generator.stream(request), index,
                        model=generator.spec.name)


def ask(question: str, *, k: int = PASSAGES, filters: SearchFilters | None = None,
        model: str | TextGenerator | None = None, options: GenerationOptions | None = None,
        min_similarity: float = MIN_SIMILARITY, runtime: Runtime | None = None) -> Answer:
    """The whole answer at once (see :func:`ask_stream`)."""
    return ask_stream(question, k=k, filters=filters, model=model, options=options,
                      min_similarity=min_similarity, runtime=runtime).answer


# --- the task -----------------------------------------------------------------------------------------

class AskRequest(TaskRequest):
    question: str = Field(min_length=1, max_length=4000)
    k: int = Field(PASSAGES, ge=1, le=20, description="passages to consider")
    filters: SearchFilters | None = None
    model: str | None = Field(None, description="chat model (default: the chat_model setting)")
    max_tokens: int | None = Field(None, ge=1, le=4096, description=f"answer length cap (default "
                                   f"{DEFAULT_OPTIONS.max_tokens})")
    min_similarity: float = Field(MIN_SIMILARITY, ge=0, le=1, description="how close a passage must be to "
                                  "the question to count (cosine, 0-1)")


def _stream(request: AskRequest, ctx: TaskContext) -> AnswerStream:
    options = GenerationOptions(max_tokens=request.max_tokens or DEFAULT_OPTIONS.max_tokens,
                                temperature=DEFAULT_OPTIONS.temperature)
    return ask_stream(request.question, k=request.k, filters=request.filters, model=request.model,
                      options=options, min_similarity=request.min_similarity, runtime=ctx.runtime)


# The index changes as files are added: answers are never cached.
TASK = Task(
    name="ask", summary="Answer a question from the personal index, citing sources", request=AskRequest,
    result=Answer, input="question", scope="index", cacheable=lambda request: False,
    run=lambda request, ctx: _stream(request, ctx).answer, stream=_stream,
)
