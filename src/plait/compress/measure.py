"""Measuring a model and its compressed variants side by side, on the same texts, in the same run.

For each model: file size; peak memory (a fresh process loads the model and runs a batch, so each
figure is that model's alone); latency at batch 1 (p50/p95); throughput with 32 texts at once; quality on
the evaluation set. Speed is timed in one process with every model loaded, in interleaved blocks (each
round runs a few texts on each model in turn), so a busy machine slows them all alike and the ratios
hold. Chat models: latency per generated token and tokens/s, perplexity on real text.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plait.compress.data import EvalSet
from plait.compress.source import Kind
from plait.errors import InputError
from plait.models.base import Embedder, GenerationOptions, Model, TextGenerator
from plait.models.spec import ModelSpec
from plait.settings import Settings

Log = Callable[[str], None]
BATCH = 32
CHAT_PROMPT_CHARS = 400


@dataclass(frozen=True)
class Timing:
    """How much to measure: more texts and rounds, steadier figures; fewer, a quicker report."""

    latency_texts: int = 30  # texts timed one by one (batch 1)
    rounds: int = 3  # timed batches of 32 per model (generations, for chat models)
    chat_tokens: int = 64  # tokens generated per timed generation
    perplexity_windows: int = 16  # windows of 512 tokens scored for perplexity


DEFAULT_TIMING = Timing()


@dataclass(frozen=True)
class Entry:
    """A model to measure: the original or a variant (registered or not yet)."""

    label: str  # how the report names it
    spec: ModelSpec
    method: str  # "original", or the method chain that made it


@dataclass
class Measurement:
    label: str
    method: str
    size_mb: float | None
    latency_ms_p50: float
    latency_ms_p95: float
    throughput: float
    throughput_unit: str
    quality: dict[str, float]
    peak_mb: float | None = None  # whole process, loading and running the model
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "method": self.method, "size_mb": self.size_mb, "peak_mb": self.peak_mb,
                "latency_ms_p50": self.latency_ms_p50, "latency_ms_p95": self.latency_ms_p95,
                "throughput": self.throughput, "throughput_unit": self.throughput_unit,
                "quality": self.quality, "notes": self.notes}


PRIMARY: dict[Kind, tuple[str, bool]] = {  # the headline quality metric, and whether higher is better
    "classifier": ("accuracy", True),
    "embedder": ("mrr@10", True),
    "chat": ("perplexity", False),
}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def measure(entries: Sequence[Entry], data: EvalSet, settings: Settings, *, timing: Timing = DEFAULT_TIMING,
            memory: bool = True, log: Log = lambda m: None) -> list[Measurement]:
    """Measure every entry (the first is the reference for fidelity and agreement)."""
    from plait.models.loading import load_model

    if not entries:
        raise InputError("nothing to measure")
    log(f"loading {len(entries)} model(s) ({settings.threads} thread(s) each)…")
    models = [load_model(e.spec, settings) for e in entries]
    try:
        if data.kind == "chat":
            results = _measure_chat(entries, models, data, settings, timing, log)
        else:
            results = _measure_encoders(entries, models, data, timing, log)
    finally:
        for m in models:
            m.close()
    for entry, result in zip(entries, results, strict=True):
        size = entry.spec.size_bytes(settings.models_dir)
        result.size_mb = round(size / 2**20, 3) if size is not None else None
    if memory:
        log("measuring peak memory, one fresh process per model…")
        for entry, result in zip(entries, results, strict=True):
            result.peak_mb = peak_memory(entry.spec, settings, data)
    return results


# Encoders (classifiers, embedders) ------------------------------------------------------------------


def _run(model: Model, texts: list[str]) -> Any:
    if isinstance(model, Embedder):
        return model.embed_many(texts, batch_size=len(texts))
    return model.predict_proba(texts)  # type: ignore[attr-defined]


def _interleaved(models: Sequence[Model], items: Sequence[list[str]], rounds: int, block: int) -> list[list[float]]:
    """Seconds per item for each model; rounds of ``block`` items per model in turn, rotating who starts."""
    times: list[list[float]] = [[] for _ in models]
    for r in range(rounds):
        for start in range(0, len(items), block):
            chunk = items[start:start + block]
            for k in range(len(models)):
                i = (k + r + start) % len(models)
                for item in chunk:
                    t = time.perf_counter()
                    _run(models[i], item)
                    times[i].append(time.perf_counter() - t)
    return times


def _measure_encoders(entries: Sequence[Entry], models: Sequence[Model], data: EvalSet, timing: Timing,
                      log: Log) -> list[Measurement]:
    texts = list(data.texts)
    singles = [[t] for t in texts[:timing.latency_texts]]
    batch = (texts * (BATCH // len(texts) + 1))[:BATCH]
    for m in models:  # warm up: first calls allocate and pick kernels
        _run(m, singles[0])
        _run(m, batch)
    log("timing batch-1 latency…")
    latency = _interleaved(models, singles, 1, 5)
    log("timing throughput at batch 32…")
    through = _interleaved(models, [batch], timing.rounds, 1)
    log("scoring quality…")
    quality = (_classifier_quality(models, data) if data.kind == "classifier" else _embedder_quality(models, data))
    out = []
    for e, lat, thr, q in zip(entries, latency, through, quality, strict=True):
        out.append(Measurement(e.label, e.method, None, round(percentile(lat, 50) * 1000, 2),
                               round(percentile(lat, 95) * 1000, 2), round(BATCH / percentile(thr, 50), 1),
                               "texts/s", q))
    return out


def _classifier_quality(models: Sequence[Model], data: EvalSet) -> list[dict[str, float]]:
    """Accuracy and macro-F1 on the gold labels, decided as the classifier decides (its tuned
    thresholds, if any), and agreement with the first model's decisions."""
    import numpy as np

    from plait.adapt.evaluate import classification_report, decide, multilabel_report

    out, reference = [], None
    for model in models:
        labels = tuple(model.labels)  # type: ignore[attr-defined]
        thresholds = model.spec.options.get("thresholds")
        proba = np.asarray(model.predict_proba(list(data.texts)), dtype=np.float64)  # type: ignore[attr-defined]
        index = {label: j for j, label in enumerate(labels)}
        if getattr(model, "multi_label", False):
            matrix = np.zeros((len(data.texts), len(labels)))
            for i, gold in enumerate(data.labels):
                for label in gold:
                    matrix[i, index[label]] = 1.0
            report = multilabel_report(labels, matrix, proba, thresholds)
            cut = np.asarray(thresholds if thresholds is not None else [0.5] * len(labels))
            decisions = proba >= cut[None, :]
        else:
            report = classification_report(labels, [index[g[0]] for g in data.labels], proba, thresholds)
            decisions = decide(proba, thresholds)
        q = {"accuracy": round(report.accuracy, 4), "macro_f1": round(report.macro_f1, 4)}
        if reference is None:
            reference = decisions
        same = decisions == reference
        q["agreement"] = round(float((same.all(axis=1) if same.ndim > 1 else same).mean()), 4)
        out.append(q)
    return out


def _embedder_quality(models: Sequence[Model], data: EvalSet) -> list[dict[str, float]]:
    import numpy as np

    out, reference = [], None
    for model in models:
        assert isinstance(model, Embedder)
        docs = model.embed_many(list(data.texts), kind="document")
        queries = model.embed_many(list(data.queries), kind="query")
        sims = queries @ docs.T  # (queries, documents); query i looks for document i
        ranks = (sims > sims[np.arange(len(sims)), np.arange(len(sims))][:, None]).sum(axis=1) + 1
        q = {"mrr@10": round(float(np.where(ranks <= 10, 1.0 / ranks, 0.0).mean()), 4),
             "recall@1": round(float((ranks == 1).mean()), 4)}
        if reference is None:
            reference = (docs, queries)
        if docs.shape[1] == reference[0].shape[1]:
            cos = np.concatenate([(docs * reference[0]).sum(axis=1), (queries * reference[1]).sum(axis=1)])
            q["cosine_fidelity"] = round(float(cos.mean()), 4)
        out.append(q)
    return out


# Chat models -----------------------------------------------------------------------------------------


def _measure_chat(entries: Sequence[Entry], models: Sequence[Model], data: EvalSet, settings: Settings,
                  timing: Timing, log: Log) -> list[Measurement]:
    from plait.compress.gguf import perplexity

    prompt = "Summarise this news report in two sentences.\n\n" + data.texts[0][:CHAT_PROMPT_CHARS]
    options = GenerationOptions(max_tokens=timing.chat_tokens, temperature=0.0, seed=0)
    per_token: list[list[float]] = [[] for _ in models]
    rates: list[list[float]] = [[] for _ in models]
    log("timing generation…")
    for r in range(timing.rounds + 1):  # round 0 warms up
        for k in range(len(models)):
            i = (k + r) % len(models)
            model = models[i]
            assert isinstance(model, TextGenerator)
            stamps, n = [time.perf_counter()], 0
            for _ in _stream(model, prompt, options):
                stamps.append(time.perf_counter())
                n += 1
            if r and n > 1:
                gaps = [b - a for a, b in zip(stamps[1:], stamps[2:], strict=False)]  # after the first token
                per_token[i] += gaps
                rates[i].append(len(gaps) / max(sum(gaps), 1e-9))
    out = []
    for i, e in enumerate(entries):
        log(f"perplexity of {e.label}…")
        ppl = perplexity(e.spec.local_path(settings.models_dir), data.texts, threads=settings.threads,
                         max_windows=timing.perplexity_windows)
        out.append(Measurement(e.label, e.method, None, round(percentile(per_token[i], 50) * 1000, 2),
                               round(percentile(per_token[i], 95) * 1000, 2),
                               round(percentile(rates[i], 50), 1) if rates[i] else 0.0, "tokens/s",
                               {"perplexity": round(ppl["perplexity"], 3), "tokens_scored": ppl["tokens_scored"]}))
    return out


def _stream(model: TextGenerator, prompt: str, options: GenerationOptions) -> Any:
    from plait.models.base import GenerationRequest

    return (d for d in model.stream(GenerationRequest(prompt=prompt, options=options)) if d.text)


# Memory ----------------------------------------------------------------------------------------------


def peak_memory(spec: ModelSpec, settings: Settings, data: EvalSet) -> float | None:
    """Peak resident memory (MB) of a fresh process that loads ``spec`` and runs one batch of 32."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    texts = list(data.texts[:BATCH]) if data.kind != "chat" else [data.texts[0][:CHAT_PROMPT_CHARS]]
    try:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            return round(pool.submit(_probe, spec.model_dump_json(), settings.model_dump_json(), texts,
                                     data.kind).result(), 1)
    except Exception:  # noqa: BLE001 - memory is informative; a probe that cannot run leaves it blank
        return None


def _probe(spec_json: str, settings_json: str, texts: list[str], kind: str) -> float:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from plait.models.loading import load_model

    spec = ModelSpec.model_validate_json(spec_json)
    settings = Settings.model_validate_json(settings_json)
    model = load_model(spec, settings)
    if kind == "chat":
        assert isinstance(model, TextGenerator)
        model.complete(texts[0], GenerationOptions(max_tokens=16, temperature=0.0))
    else:
        _run(model, texts)
    return peak_rss_mb()


def peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's VmHWM starts afresh at exec; ru_maxrss would carry
    the parent's peak over into a spawned child."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
