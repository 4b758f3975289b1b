"""Summaries of a text or a document: extractive (sentences chosen by embedding centrality) or abstractive
(written by the chat model, map-reduce over pieces that fit its context window).

Extractive is the default: it is fast, it never states anything the text does not, and it works with
any embedder. Sentences are scored by their cosine to the document's mean embedding (for unit vectors
that is each sentence's mean similarity to all the others: degree centrality), and picked by maximal
marginal relevance so a near-repeat of a chosen sentence loses to a new point.

Both methods respect the length asked: a number of sentences (or bullets) and/or a number of words.
The model's answer is trimmed to it when it runs over, at a sentence boundary where possible.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationError

from plait.errors import InputError
from plait.models.base import Embedder, GenerationOptions, Message, TextGenerator
from plait.readers.document import Document
from plait.readers.sentences import sentences as split_sentences
from plait.runtime import Runtime, get_runtime
from plait.tasks.registry import MAX_TEXT_CHARS, Task, TaskContext, TaskRequest

if TYPE_CHECKING:
    import numpy as np

Method = Literal["extractive", "abstractive"]
Style = Literal["paragraph", "bullets", "one-line"]

MAX_EXTRACTIVE_CHARS = 2_000_000  # ~20k sentences: about a minute of embedding on a laptop CPU
MAX_ABSTRACTIVE_CHARS = 300_000  # ~75k tokens: tens of model calls; more is a job for extractive
ONE_LINE_WORDS = 30
DEFAULT_SENTENCES = {"paragraph": 3, "bullets": 5, "one-line": 1}
MMR_LAMBDA = 0.7  # weight of centrality against redundancy with what is already chosen


class SummaryOptions(TaskRequest):
    """What a user may ask of a summary (CLI flags, HTTP request bodies, workflow steps)."""

    method: Method = "extractive"
    style: Style = "paragraph"
    sentences: int | None = Field(None, ge=1, le=100, description="at most this many sentences (bullets)")
    words: int | None = Field(None, ge=3, le=5000, description="at most this many words")
    model: str | None = Field(None, description="embedder (extractive) or chat model (abstractive)")


@dataclass(frozen=True)
class Summary:
    text: str  # formatted: a paragraph, "- " bullets, or one line
    points: tuple[str, ...]  # the sentences or bullet items, in order
    method: str
    style: str
    model: str
    words: int
    max_sentences: int | None
    max_words: int | None
    source_words: int
    source_sentences: int
    chunks: int = 1  # pieces summarised separately first (abstractive map-reduce)


def summarize(text: str | Document, *, method: Method = "extractive", style: Style = "paragraph",
              sentences: int | None = None, words: int | None = None,
              model: str | Embedder | TextGenerator | None = None, runtime: Runtime | None = None,
              progress: Callable[[int, int], None] | None = None) -> Summary:
    """Summarise ``text`` (a string or a Document from :mod:`plait.readers`).

    ``sentences`` caps the sentences (bullets, for ``style="bullets"``), ``words`` the words; with
    neither, a paragraph has 3 sentences, bullets 5, and one line at most 30 words. ``progress`` gets
    (done, total) model calls of an abstractive map-reduce.
    """
    try:
        opts = SummaryOptions(method=method, style=style, sentences=sentences, words=words,
                              model=model if isinstance(model, str) else None)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InputError(f"summary option {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    raw_length = len(text.text if isinstance(text, Document) else text) if isinstance(text, Document | str) else 0
    limit = MAX_EXTRACTIVE_CHARS if opts.method == "extractive" else MAX_ABSTRACTIVE_CHARS
    if raw_length > limit:  # checked before splitting: a huge text takes long even to split
        raise InputError(f"the text is {raw_length / 1e6:.1f} MB; {opts.method} summaries take up to "
                         f"{limit / 1e6:.1f} MB at once: split it, or summarise its parts"
                         + (" (or use --method extractive)" if opts.method == "abstractive" else ""))
    units = _units(text)
    source = " ".join(units)
    if not source.strip():
        raise InputError("nothing to summarise: the text is empty")
    max_sentences = 1 if opts.style == "one-line" else opts.sentences
    if max_sentences is None and opts.words is None:
        max_sentences = DEFAULT_SENTENCES[opts.style]
    max_words = opts.words if opts.words is not None else (ONE_LINE_WORDS if opts.style == "one-line" else None)
    rt = runtime or get_runtime()
    if opts.method == "extractive":
        emb = model if isinstance(model, Embedder) else rt.model(opts.model or rt.settings.embed_model, Embedder)
        points = extract_sentences(units, emb, max_sentences, max_words)
        model_name, chunks = emb.spec.name, 1
    else:
        gen = model if isinstance(model, TextGenerator) else rt.model(opts.model or rt.settings.chat_model,
                                                                       TextGenerator)
        points, chunks = _abstractive(units, gen, opts.style, max_sentences, max_words, progress)
        model_name = gen.spec.name
    points = fit_length(points, max_sentences, max_words)
    return Summary(
        text=format_points(points, opts.style), points=tuple(points), method=opts.method, style=opts.style,
        model=model_name, words=sum(len(p.split()) for p in points), max_sentences=max_sentences,
        max_words=max_words, source_words=len(source.split()), source_sentences=len(units), chunks=chunks,
    )


def _units(text: str | Document) -> list[str]:
    """Sentences of the text; a Document's sections are split separately so headings stay out."""
    if isinstance(text, Document):
        if text.kind == "email":  # what the sender wrote: not the headers, quotes or signature
            from plait.readers.mail import written_text

            return split_sentences(written_text(text))
        sections = list(text.sections)
        if sections:
            return [s for section in sections for s in split_sentences(section.text)]
        text = text.text
    if not isinstance(text, str):
        raise InputError(f"summarize takes a string or a Document, not {type(text).__name__}")
    return split_sentences(text)


# --- extractive -------------------------------------------------------------------------------------

def extract_sentences(units: Sequence[str], embedder: Embedder, max_sentences: int | None,
                      max_words: int | None) -> list[str]:
    """The most central, least redundant sentences within the limits, in the order of the text."""
    import numpy as np

    candidates = [i for i, u in enumerate(units) if len(u.split()) >= 3] or list(range(len(units)))
    if len(candidates) <= 1:
        return [units[i] for i in candidates]
    vectors = embedder.embed_many([units[i] for i in candidates], kind="document")  # (n, d), unit rows
    centroid = vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    centrality = vectors @ centroid  # (n,)
    chosen = mmr(vectors, centrality, limit=max_sentences or len(candidates),
                 fits=_word_budget([units[i] for i in candidates], max_words))
    if not chosen:  # no sentence fits the word budget: the most central one, cut to it
        chosen = [int(np.argmax(centrality))]
    return [units[candidates[i]] for i in sorted(chosen)]


def mmr(vectors: np.ndarray, relevance: np.ndarray, *, limit: int, lam: float = MMR_LAMBDA,
        fits: Callable[[list[int], int], bool] | None = None) -> list[int]:
    """Maximal marginal relevance: pick ``limit`` rows, each maximising
    ``lam * relevance - (1 - lam) * max cosine to the rows already picked``; ``fits`` can veto a row."""
    import numpy as np

    n = len(relevance)
    picked: list[int] = []
    max_sim = np.full(n, -np.inf)  # (n,) highest similarity to any picked row so far
    available = np.ones(n, dtype=bool)
    while len(picked) < limit and available.any():
        redundancy = np.where(np.isfinite(max_sim), max_sim, 0.0)
        score = np.where(available, lam * relevance - (1 - lam) * redundancy, -np.inf)
        best = int(np.argmax(score))
        available[best] = False
        if fits is not None and not fits(picked, best):
            continue
        picked.append(best)
        max_sim = np.maximum(max_sim, vectors @ vectors[best])
    return picked


def _word_budget(texts: Sequence[str], max_words: int | None) -> Callable[[list[int], int], bool] | None:
    if max_words is None:
        return None
    lengths = [len(t.split()) for t in texts]
    return lambda picked, i: sum(lengths[j] for j in picked) + lengths[i] <= max_words


# --- abstractive ------------------------------------------------------------------------------------

PROMPTS = {
    "paragraph": "Summarize the text above in {n} sentences.",
    "bullets": "Summarize the text above as {n} short bullet points, one per line, each starting with '- '.",
    "one-line": "Summarize the text above in one short sentence.",
}
MAP_SENTENCES = 3  # each piece of a long document is first cut down to this
SYSTEM = "You write faithful, concise summaries. Use only facts stated in the text."


def _abstractive(units: list[str], gen: TextGenerator, style: Style, max_sentences: int | None,
                 max_words: int | None, progress: Callable[[int, int], None] | None) -> tuple[list[str], int]:
    n = max_sentences or max(1, (max_words or 60) // 20)
    answer_tokens = _answer_tokens(n, max_words)
    window = gen.context_length or 2048
    # Room for the text: the window less the answer, the instruction and the chat template's tokens.
    budget = max(128, window - answer_tokens - 96)
    pieces = pack(units, gen.count_tokens, budget)
    chunks = len(pieces)
    calls_done = 0
    total_calls = chunks + 1 if chunks > 1 else 1
    while len(pieces) > 1:
        partials = []
        for piece in pieces:
            partials.append(_ask(gen, piece, PROMPTS["paragraph"].format(n=MAP_SENTENCES),
                                 _answer_tokens(MAP_SENTENCES, None)))
            calls_done += 1
            if progress:
                progress(calls_done, total_calls)
        merged = [s for partial in partials for s in split_sentences(partial)]
        repacked = pack(merged, gen.count_tokens, budget)
        if len(repacked) >= len(pieces):  # the map step did not shrink the text: stop recursing
            repacked = [" ".join(merged)[: budget * 3]]
        if len(repacked) > 1:
            total_calls += len(repacked)
        pieces = repacked
    answer = _ask(gen, pieces[0], PROMPTS[style].format(n=n), answer_tokens)
    if progress:
        progress(total_calls, total_calls)
    return _points(answer, style), chunks


def _answer_tokens(n_sentences: int, max_words: int | None) -> int:
    # ~1.4 tokens a word in English; a sentence of a summary rarely passes 35 words. The cap is a
    # safety net: the answer is trimmed to the asked length afterwards anyway.
    if max_words is not None:
        return min(512, int(max_words * 1.6) + 24)
    return min(512, n_sentences * 48 + 16)


def pack(units: Sequence[str], count_tokens: Callable[[str], int], budget: int) -> list[str]:
    """Consecutive sentences joined into pieces of at most ``budget`` tokens (a longer sentence is cut)."""
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for unit in units:
        size = count_tokens(unit) + 1
        if size > budget:
            words = unit.split()
            step = max(1, len(words) * budget // size)
            parts = [" ".join(words[k:k + step]) for k in range(0, len(words), step)]
        else:
            parts = [unit]
        for part in parts:
            size = count_tokens(part) + 1
            if current and used + size > budget:
                pieces.append(" ".join(current))
                current, used = [], 0
            current.append(part)
            used += size
    if current:
        pieces.append(" ".join(current))
    return pieces


def _ask(gen: TextGenerator, text: str, instruction: str, max_tokens: int) -> str:
    messages = [Message("system", SYSTEM), Message("user", f"{text}\n\n{instruction}")]
    return gen.chat(messages, GenerationOptions(max_tokens=max_tokens, temperature=0.0, seed=0)).text


_LABEL = re.compile(r"^\s*(?:here is|here's)?\s*(?:a |the )?(?:short |brief |one-line )?summary[^:\n]*:\s*", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def _points(answer: str, style: Style) -> list[str]:
    """The sentences or bullet items of a model's answer, without labels and markup."""
    text = _LABEL.sub("", answer.strip()).replace("**", "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    bullets = [_BULLET.sub("", line) for line in lines if _BULLET.match(line)]
    if style == "bullets" and len(bullets) >= 2:
        items = bullets
    else:
        items = [s for line in lines for s in split_sentences(_BULLET.sub("", line))]
    items = [item for item in (i.strip() for i in items) if len(item.split()) >= 2 or len(items) == 1]
    if style != "bullets" and len(items) > 1 and not re.search(r"[.!?…][\"')\]]*$", items[-1]):
        items.pop()  # the answer ran out of tokens mid-sentence
    return items


# --- length and format ------------------------------------------------------------------------------

def fit_length(points: Sequence[str], max_sentences: int | None, max_words: int | None) -> list[str]:
    """At most ``max_sentences`` points and ``max_words`` words, keeping whole points where possible."""
    kept = list(points)[: max_sentences] if max_sentences is not None else list(points)
    if max_words is None:
        return kept
    out: list[str] = []
    used = 0
    for point in kept:
        n = len(point.split())
        if used + n <= max_words:
            out.append(point)
            used += n
        elif not out:  # even the first point is too long: cut it at a word boundary
            out.append(" ".join(point.split()[:max_words]).rstrip(",;:") + "…")
            break
        else:
            break
    return out


def format_points(points: Sequence[str], style: Style) -> str:
    if style == "bullets":
        return "\n".join(f"- {p}" for p in points)
    return " ".join(points)


# --- the task -----------------------------------------------------------------------------------------

class SummarizeRequest(SummaryOptions):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="the text to summarise")


def _run(request: SummarizeRequest, ctx: TaskContext) -> Summary:
    return summarize(ctx.document or request.text, method=request.method, style=request.style,
                     sentences=request.sentences, words=request.words, model=request.model, runtime=ctx.runtime)


# Abstractive summaries decode greedily (temperature 0, fixed seed): both methods are repeatable, so cacheable.
TASK = Task(
    name="summarize", summary="Summarise a text: extractive (sentences chosen by centrality) or abstractive",
    request=SummarizeRequest, result=Summary, run=_run, reads_documents=True,
    models=lambda request, settings: [request.model or (settings.embed_model if request.method == "extractive"
                                                        else settings.chat_model)],
)
