"""``plait eval``: search and ask measured on the person's own index, without labels.

1. Known items (:mod:`plait.evaluation.known_items`): held-out sentences searched by keyword, vector and
   hybrid search over a copy of the index without them. MRR@10 and recall@10 of the document they
   came from.
2. Questions (:mod:`plait.evaluation.questions`): written by the chat model from passages, kept only when
   the passage answers them, then asked with ``ask``. Answer support (the answer states the expected
   answer), abstention (the answer says the documents do not say), warnings, and whether the passage's
   document was among the sources.

The run is recorded with the models and settings it used (:mod:`plait.evaluation.history`), so runs
before and after a change of model, setting or index can be compared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from plait.errors import InputError
from plait.evaluation.history import EvalRun, now, record
from plait.evaluation.matching import states

if TYPE_CHECKING:
    from plait.runtime import Runtime

MODES = ("keyword", "vector", "hybrid")
Progress = Callable[[str], None]


def settings_in_use(chat_model: str) -> dict[str, Any]:
    """What can change the results besides the models: recorded with each run."""
    from plait.index import chunking, fusion, retrieval
    from plait.tasks import ask, evidence

    return {"passages": ask.PASSAGES, "min_similarity": ask.MIN_SIMILARITY, "answer_score": ask.ANSWER_SCORE,
            "uncertain_score": ask.UNCERTAIN_SCORE, "evidence_weights": list(evidence.WEIGHTS),
            "hybrid_vector_weight": fusion.VECTOR_WEIGHT, "candidates": retrieval.CANDIDATES,
            "chunk_words": chunking.MAX_WORDS, "chat_model": chat_model}


def known_item_metrics(copy: Runtime, items: list[Any], progress: Progress | None) -> dict[str, Any]:
    from plait.compress.measure import percentile
    from plait.tasks.search import search

    out: dict[str, Any] = {}
    for mode in MODES:
        reciprocal, found, times = 0.0, 0, []
        for item in items:
            start = time.perf_counter()
            hits = search(item.query, k=10, mode=mode, runtime=copy).hits  # type: ignore[arg-type]
            times.append(time.perf_counter() - start)
            ranks = [h.rank for h in hits if h.document_id == item.document_id]
            if ranks:
                reciprocal += 1 / ranks[0]
                found += 1
        out[mode] = {"mrr@10": round(reciprocal / len(items), 4), "recall@10": round(found / len(items), 4),
                     "query_ms_p50": round(percentile(times, 50) * 1000, 1)}
        if progress:
            progress(f"known items, {mode}: MRR@10 {out[mode]['mrr@10']:.3f}")
    return out


def question_metrics(runtime: Runtime, questions: list[Any], chat_model: str,
                     progress: Progress | None) -> dict[str, Any]:
    from plait.compress.measure import percentile
    from plait.tasks.ask import ask

    supported = abstained = warned = source_found = 0
    times = []
    for q in questions:
        start = time.perf_counter()
        answer = ask(q.question, model=chat_model, runtime=runtime)
        times.append(time.perf_counter() - start)
        abstained += answer.status == "not_found"
        warned += answer.warning is not None
        supported += answer.status != "not_found" and states(answer.text, [q.answer])
        if answer.sources:
            ids = tuple(s.chunk_id for s in answer.sources)
            rows = runtime.store.query(f"SELECT document_id FROM index_chunks WHERE id IN ({','.join('?' * len(ids))})",
                                       ids)
            source_found += q.document_id in {int(r[0]) for r in rows}
    n = len(questions)
    out = {"answer_support": round(supported / n, 4), "abstention": round(abstained / n, 4),
           "warned": round(warned / n, 4), "source_found": round(source_found / n, 4),
           "seconds_p50": round(percentile(times, 50), 2)}
    if progress:
        progress(f"questions: answer support {out['answer_support']:.2f}, abstention {out['abstention']:.2f}")
    return out


def evaluate(runtime: Runtime, *, queries: int = 100, questions: int = 20, seed: int = 0,
             collection: str | None = None, chat_model: str | None = None, keep: bool = True,
             progress: Progress | None = None) -> EvalRun:
    """Build the known-item and question sets from the index, run search and ask on them, and (``keep``)
    record the run. ``queries`` or ``questions`` may be 0 to skip that part."""
    from plait.evaluation import known_items
    from plait.evaluation import questions as question_sets
    from plait.index.core import open_index
    from plait.models.base import TextGenerator

    if queries < 0 or questions < 0:
        raise InputError("the numbers of queries and questions cannot be negative")
    index = open_index(runtime)
    documents, chunks = runtime.store.query("SELECT (SELECT count(*) FROM index_documents), "
                                            "(SELECT count(*) FROM index_chunks)")[0]
    if not chunks:
        raise InputError("the index is empty: add files first with `plait index add`")
    if collection and not runtime.store.query("SELECT 1 FROM index_collections WHERE name = ?", (collection,)):
        raise InputError(f"there is no collection '{collection}'; see `plait index list`")
    chat = chat_model or runtime.settings.chat_model
    started, start = now(), time.perf_counter()
    metrics: dict[str, Any] = {}
    sizes = {"documents": int(documents), "chunks": int(chunks)}
    if queries:
        items = known_items.sample(runtime, queries, seed=seed, collection=collection)
        sizes["queries"] = len(items)
        if items:
            t = time.perf_counter()
            with known_items.held_out_copy(runtime, items) as copy:
                metrics["known_item"] = known_item_metrics(copy, items, progress)
            metrics["known_item"]["seconds"] = round(time.perf_counter() - t, 1)
    if questions:
        t = time.perf_counter()
        generated = question_sets.generate(runtime, runtime.model(chat, TextGenerator), questions, seed=seed,
                                           collection=collection)
        sizes["questions"] = len(generated.kept)
        metrics["questions"] = {"written": generated.tried, "kept": len(generated.kept),
                                "thrown_away": generated.refused}
        if progress:
            progress(f"questions: {len(generated.kept)} kept of {generated.tried} written")
        if generated.kept:
            metrics["questions"].update(question_metrics(runtime, generated.kept, chat, progress))
        metrics["questions"]["seconds"] = round(time.perf_counter() - t, 1)
    run = EvalRun(0, started, round(time.perf_counter() - start, 1), collection, index.model_name(), chat,
                  settings_in_use(chat), metrics, sizes)
    return record(runtime.store, run) if keep else run
