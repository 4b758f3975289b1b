"""Compress to a budget: try the methods that apply, keep the best variant that fits.

A budget is a latency (p50 at batch 1, on this machine, in ms) and/or a size on disk (MB). Every
candidate is built unregistered and measured with the original on the evaluation set; among those within
the budget and within ``max_loss`` of the original's quality, the best quality wins (ties: the faster).
Only the winner is registered. When none fits, the error says which constraint failed and by how much,
and nothing is left behind.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plait.compress.data import EvalSet, TrainSet
from plait.compress.measure import DEFAULT_TIMING, Entry, Log, Measurement, Timing, measure
from plait.compress.methods import MethodParams, resolve_chain
from plait.compress.report import Report
from plait.compress.source import Source, source_of
from plait.compress.variants import (
    Staged,
    build_chain,
    check_chain,
    check_name,
    default_name,
    discard,
    eval_for,
    metrics_of,
    register,
    report_folder,
    stderr_log,
    train_for,
)
from plait.errors import InputError
from plait.models.spec import ModelSpec
from plait.runtime import Runtime, get_runtime

# What is tried, cheapest first. Distillation trains for minutes, so it is tried when training texts are
# given (classifiers) or always (embedders, which distil on general English by default).
ENCODER_CANDIDATES = ("onnx-int8", "onnx", "torch-int8", "prune-neurons+onnx-int8", "drop-layers+onnx-int8")
TRAINED_CANDIDATES = ("distill+onnx-int8", "distill")
ONNX_CANDIDATES = ("onnx-int8",)
GGUF_CANDIDATES = ("gguf-q8_0", "gguf-q5_k_m", "gguf-q5_0", "gguf-q4_k_m", "gguf-q4_0", "gguf-iq4_nl", "gguf-q3_k_m",
                   "gguf-q2_k")


class BudgetNotMet(InputError):
    """No variant fits the budget; the message says which constraint failed and by how much."""


@dataclass
class BudgetResult:
    chosen: ModelSpec
    report: Report
    report_files: dict[str, Path] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)  # candidate → why it was not chosen


def candidates(source: Source, *, with_training: bool) -> list[str]:
    if source.family == "torch":
        return list(ENCODER_CANDIDATES) + (list(TRAINED_CANDIDATES) if with_training else [])
    if source.family == "onnx":
        return list(ONNX_CANDIDATES)
    if source.family == "gguf":
        return list(GGUF_CANDIDATES)
    return []


def quality_loss(report: Report, row: Measurement) -> float:
    """How much worse than the original, in points (classifier, embedder) or perplexity (chat); >= 0 is worse."""
    metric, higher = report.primary
    base, value = report.rows[0].quality.get(metric), row.quality.get(metric)
    if base is None or value is None:
        return math.inf
    loss = (base - value) if higher else (value - base)
    return loss * 100 if report.kind != "chat" else loss


def verdict(report: Report, row: Measurement, budget_ms: float | None, budget_mb: float | None,
            max_loss: float) -> str | None:
    """None if ``row`` fits, else why not."""
    problems = []
    if budget_ms is not None and row.latency_ms_p50 > budget_ms:
        problems.append(f"{row.latency_ms_p50:g} ms > {budget_ms:g} ms")
    if budget_mb is not None and (row.size_mb is None or row.size_mb > budget_mb):
        problems.append(f"{row.size_mb:g} MB > {budget_mb:g} MB" if row.size_mb is not None else "size unknown")
    loss = quality_loss(report, row)
    if loss > max_loss:
        unit = "points" if report.kind != "chat" else "perplexity"
        problems.append(f"loses {loss:.2f} {unit} of {report.primary[0]} (allowed {max_loss:g})")
    return "; ".join(problems) or None


def shortfall(report: Report, budget_ms: float | None, budget_mb: float | None, max_loss: float) -> str:
    """Which constraint no candidate meets, and by how much the closest one misses it."""
    rows = report.rows[1:]
    parts = []
    if budget_ms is not None:
        fastest = min(rows, key=lambda r: r.latency_ms_p50)
        if fastest.latency_ms_p50 > budget_ms:
            parts.append(f"the fastest variant ({fastest.label}) takes {fastest.latency_ms_p50:g} ms at batch 1, "
                         f"{fastest.latency_ms_p50 - budget_ms:.1f} ms over the {budget_ms:g} ms budget")
    if budget_mb is not None:
        smallest = min(rows, key=lambda r: r.size_mb if r.size_mb is not None else math.inf)
        if smallest.size_mb is None:
            parts.append("the variants' sizes are unknown")
        elif smallest.size_mb > budget_mb:
            parts.append(f"the smallest variant ({smallest.label}) is {smallest.size_mb:g} MB, "
                         f"{smallest.size_mb - budget_mb:.1f} MB over the {budget_mb:g} MB budget")
    if not parts:  # each limit is met by some variant, but not together, or only with too much loss
        fitting = [r for r in rows if verdict(report, r, budget_ms, budget_mb, math.inf) is None]
        if fitting:
            best = min(fitting, key=lambda r: quality_loss(report, r))
            parts.append(f"{best.label} fits but loses {quality_loss(report, best):.2f} "
                         f"{'points' if report.kind != 'chat' else 'perplexity'} of {report.primary[0]}, more than "
                         f"the {max_loss:g} allowed (raise --max-loss)")
        else:
            parts.append("no single variant meets the latency and size limits together")
    return "; ".join(parts)


def compress_to_budget(model: str, *, budget_ms: float | None = None, budget_mb: float | None = None,
                       eval_data: Path | EvalSet | None = None, train: Path | TrainSet | None = None,
                       max_loss: float = 2.0, name: str | None = None, methods: Sequence[str] | None = None,
                       params: MethodParams | None = None, report_dir: Path | None = None,
                       timing: Timing = DEFAULT_TIMING, runtime: Runtime | None = None,
                       log: Log = stderr_log) -> BudgetResult:
    """Register the best variant of ``model`` within the budget, or raise :class:`BudgetNotMet`."""
    if budget_ms is None and budget_mb is None:
        raise InputError("give a budget: --budget-ms (latency at batch 1) and/or --budget-mb (size on disk)")
    for value, what in ((budget_ms, "--budget-ms"), (budget_mb, "--budget-mb")):
        if value is not None and not value > 0:
            raise InputError(f"{what} must be a positive number")
    if max_loss < 0:
        raise InputError("--max-loss must be zero or more")
    rt = runtime or get_runtime()
    params = params or MethodParams()
    source = source_of(rt.catalog.get(model))
    with_training = train is not None or source.kind == "embedder"
    tried = list(methods) if methods else candidates(source, with_training=with_training)
    if not tried:
        raise InputError(f"no compression method applies to '{model}', {source.describe()}")
    chains = {m: resolve_chain(m) for m in tried}
    for chain in chains.values():
        check_chain(source, chain)
    final_name = name or default_name(source.spec.name, "fit")
    check_name(final_name)
    if final_name in rt.catalog.names():
        raise InputError(f"a model named '{final_name}' already exists; pass --name")
    labels = source.labels(rt.settings)
    data = eval_for(source, rt.store, eval_data, labels)
    train_set = train_for(source, list(chains.values()), train, labels, rt.store)
    staged: list[Staged] = []
    try:
        for method_name, chain in chains.items():
            staged.append(build_chain(source, default_name(source.spec.name, method_name), chain, rt.settings,
                                      params, train_set, labels, log, rt.pool))
        entries = [Entry(f"{source.spec.name} (original)", source.spec, "original")]
        entries += [Entry(s.name, s.spec, s.chain) for s in staged]
        rows = measure(entries, data, rt.settings, timing=timing, memory=False, log=log)
        report = Report(source.spec.name, source.kind, data.source or "the evaluation set", len(data.texts), rows)
        reasons = {row.label: why for row in rows[1:]
                   if (why := verdict(report, row, budget_ms, budget_mb, max_loss)) is not None}
        fits = [(row, s) for row, s in zip(rows[1:], staged, strict=True) if row.label not in reasons]
        budget = " and ".join(x for x in (f"{budget_ms:g} ms" if budget_ms is not None else "",
                                          f"{budget_mb:g} MB" if budget_mb is not None else "") if x)
        report.notes.append(f"budget: {budget}, quality loss at most {max_loss:g}")
        report.notes += [f"{label}: {why}" for label, why in reasons.items()]
        if verdict(report, rows[0], budget_ms, budget_mb, max_loss) is None:
            report.notes.append(f"the original {source.spec.name} already fits this budget")
        files = report.write(report_dir or report_folder(rt.settings, source.spec.name))
        if not fits:
            raise BudgetNotMet(f"no variant of '{model}' fits {budget}: "
                               f"{shortfall(report, budget_ms, budget_mb, max_loss)} (report: {files['html']})")
        _, higher = report.primary
        best_row, best = max(fits, key=lambda f: ((f[0].quality[report.primary[0]] if higher
                                                   else -f[0].quality[report.primary[0]]), -f[0].latency_ms_p50))
        best.name = final_name
        chosen = register(rt, best, source.spec, replace=False, metrics=metrics_of(report, best_row.label),
                          extra={"eval": data.source, "train": train_set.source if train_set else None,
                                 "budget": {"ms": budget_ms, "mb": budget_mb, "max_loss": max_loss}})
        staged.remove(best)
        report.notes.append(f"chosen: {best_row.label} ({best.chain}), registered as {final_name}")
        files = report.write(files["json"].parent)
        return BudgetResult(chosen, report, files, reasons)
    finally:
        discard(staged)
