"""``compress``: make variants of a catalog model, measure them against it, and register each one.

Every variant is built in a hidden folder under ``$PLAIT_HOME/models/``, measured there, and only then
moved to ``models/<name>/`` and added to the catalog (with its parent, method, parameters and measured
figures as provenance). A failure or Ctrl-C at any point removes the unfinished folders: the catalog
never names a model whose files are incomplete. Variants load through the same interfaces as their
parent (``embed``, ``classify``, ``chat``), so nothing changes for the code that uses them.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.compress.data import EvalSet, TrainSet, load_eval, load_train
from plait.compress.measure import DEFAULT_TIMING, Entry, Log, Timing, measure
from plait.compress.methods import (
    FOLDER,
    BuildContext,
    Built,
    Method,
    MethodParams,
    check_applies,
    resolve_chain,
)
from plait.compress.report import Report, reports_home
from plait.compress.source import Source, family_of, source_of
from plait.errors import BackendError, CatalogError, InputError, PlaitError
from plait.models.spec import ModelSpec
from plait.runtime import Runtime, get_runtime
from plait.settings import Settings
from plait.store import Store

if TYPE_CHECKING:
    from plait.models.loading import Models


@dataclass
class Staged:
    """A variant whose files are complete but not yet registered."""

    name: str
    chain: str
    folder: Path
    spec: ModelSpec  # pointing into ``folder``
    built: list[Built]
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)  # the parameters the methods used


@dataclass
class CompressResult:
    variants: list[ModelSpec]
    report: Report | None = None
    report_files: dict[str, Path] = field(default_factory=dict)


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr)


def default_name(parent: str, chain: str) -> str:
    """``news@2`` + ``distill+onnx-int8`` → ``news-v2-distill-onnx-int8`` ('@' marks plait tune's versions)."""
    return f"{parent.replace('@', '-v')}-{chain.replace('+', '-')}"


def _fill(options: dict[str, Any], folder: Path) -> dict[str, Any]:
    return {k: v.replace(FOLDER, str(folder)) if isinstance(v, str) else v for k, v in options.items()}


def _spec_at(name: str, parent: ModelSpec, built: Built, folder: Path, **extra: Any) -> ModelSpec:
    path = folder if built.file == "." else folder / built.file
    return ModelSpec(name=name, backend=built.backend, capabilities=parent.capabilities, source=str(path),
                     options=_fill(built.options, folder), license=parent.license, **extra)


def check_name(name: str) -> None:
    from pydantic import ValidationError

    try:
        ModelSpec(name=name, backend="-", capabilities=(), source="-")
    except ValidationError as exc:
        raise InputError(f"'{name}' cannot name a model: use letters, digits and . _ @ : - "
                         "(starting with a letter or digit)") from exc


def check_chain(source: Source, chain: list[Method]) -> None:
    """Every step must apply to what the step before it makes (checked before anything is built)."""
    current = source
    for m in chain:
        check_applies(m, current)
        current = Source(current.spec, current.kind, m.produces)


def prepare(runtime: Runtime, model: str, methods: Sequence[str], names: Sequence[str] | None,
            replace: bool) -> tuple[Source, list[tuple[str, list[Method]]]]:
    parent = runtime.catalog.get(model)
    source = source_of(parent)
    if not methods:
        raise InputError("give a method (--method) or a budget (--budget-ms/--budget-mb)")
    chains = [resolve_chain(m) for m in methods]
    for chain in chains:
        check_chain(source, chain)
    chosen = list(names) if names else [default_name(parent.name, "+".join(m.name for m in c)) for c in chains]
    if len(chosen) != len(chains):
        raise InputError(f"give one name per method: {len(chains)} method(s), {len(chosen)} name(s)")
    if len(set(chosen)) != len(chosen):
        raise InputError("two variants would have the same name; give --name for each")
    for name in chosen:
        check_name(name)
        if name in runtime.catalog.names() and not replace:
            raise CatalogError(f"a model named '{name}' already exists; pass --name, or --replace to rebuild it")
    return source, list(zip(chosen, chains, strict=True))


def build_chain(source: Source, name: str, chain: list[Method], settings: Settings, params: MethodParams,
                train: TrainSet | None, labels: tuple[str, ...], log: Log, models: Models | None = None) -> Staged:
    """Run ``chain`` into a hidden folder; returns it staged (not registered)."""
    models_dir = settings.models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    folders: list[Path] = []
    built: list[Built] = []
    current = source
    try:
        for step, m in enumerate(chain):
            folder = models_dir / f".{name}.{os.getpid()}.{step}.partial"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            folders.append(folder)
            log(f"{name}: {m.name} ({m.summary})…")
            ctx = BuildContext(current, settings, folder, params, labels,
                               train if (m.needs_train or m.uses_train) else None, log, models)
            try:
                result = m.build(ctx)
            except (PlaitError, KeyboardInterrupt):
                raise
            except Exception as exc:  # torch, onnx and llama.cpp raise their own errors
                raise BackendError(f"{m.name} on '{current.spec.name}' failed: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc
            built.append(result)
            spec = _spec_at(f"{name}.step{step}", source.spec, result, folder)
            current = Source(spec, source.kind, family_of(spec))
        for folder in folders[:-1]:  # intermediate steps are not kept
            shutil.rmtree(folder, ignore_errors=True)
        final = folders[-1]
        spec = _spec_at(name, source.spec, built[-1], final)
        used = {k: getattr(params, k)
                for m, b in zip(chain, built, strict=True) for k in m.knobs(trained="epochs" in b.details)}
        return Staged(name, "+".join(m.name for m in chain), final, spec, built, time.perf_counter() - start, used)
    except BaseException:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def register(runtime: Runtime, staged: Staged, parent: ModelSpec, *, replace: bool, metrics: dict[str, float],
             extra: dict[str, Any]) -> ModelSpec:
    """Move the staged folder into place and add the catalog entry; on failure, remove the folder."""
    final = runtime.settings.models_dir / staged.name
    old = None
    if final.exists():
        if staged.name in runtime.catalog.names() and replace:
            old = final.with_name(f".{staged.name}.{os.getpid()}.old")
            os.replace(final, old)
        else:  # left by an entry removed from the catalog: nothing refers to it
            shutil.rmtree(final)
    os.replace(staged.folder, final)
    spec = _spec_at(staged.name, parent, staged.built[-1], final,
                    description=f"{parent.name}, compressed: {staged.chain}",
                    metrics=metrics,
                    provenance={"parent": parent.name, "method": staged.chain,
                                "params": staged.params, "steps": [b.details for b in staged.built],
                                "built_seconds": round(staged.seconds, 1),
                                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra})
    try:
        runtime.catalog.add(spec, replace=replace)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    runtime.pool.unload(staged.name)  # a replaced model must not be served from memory
    return spec


def discard(staged: Sequence[Staged]) -> None:
    for s in staged:
        shutil.rmtree(s.folder, ignore_errors=True)


def eval_for(source: Source, store: Store, eval_data: Path | EvalSet | None,
             labels: tuple[str, ...]) -> EvalSet:
    if isinstance(eval_data, EvalSet):
        if eval_data.kind != source.kind:
            raise InputError(f"the evaluation set is for a {eval_data.kind}, but '{source.spec.name}' is "
                             f"{source.describe()}")
        if source.kind == "classifier":
            from plait.compress.data import check_labels

            check_labels(eval_data.labels, labels, eval_data.source or "the evaluation set")
        return eval_data
    return load_eval(source, eval_data, labels, store)


def train_for(source: Source, chains: Sequence[list[Method]], train: Path | TrainSet | None,
              labels: tuple[str, ...], store: Store) -> TrainSet | None:
    needs = any(m.needs_train for c in chains for m in c)
    uses = any(m.uses_train for c in chains for m in c)
    if isinstance(train, TrainSet):
        return train
    if needs or (uses and train is not None):
        return load_train(source, train, labels, store)
    return None


def report_folder(settings: Settings, model: str) -> Path:
    return reports_home(settings) / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"


def metrics_of(report: Report, label: str) -> dict[str, float]:
    row = next(r for r in report.rows if r.label == label)
    out = {k: float(v) for k, v in row.quality.items()}
    for key in ("size_mb", "latency_ms_p50", "latency_ms_p95", "throughput", "peak_mb"):
        value = getattr(row, key)
        if value is not None:
            out[key] = float(value)
    return out


def compress(model: str, methods: Sequence[str], *, names: Sequence[str] | None = None,
             params: MethodParams | None = None, eval_data: Path | EvalSet | None = None,
             train: Path | TrainSet | None = None, measure_variants: bool = True, memory: bool = True,
             report_dir: Path | None = None, replace: bool = False, timing: Timing = DEFAULT_TIMING,
             runtime: Runtime | None = None, log: Log = stderr_log) -> CompressResult:
    """Make one variant of ``model`` per method (or ``a+b`` chain), measure them, register them.

    Inputs are checked before anything is built: the methods must apply to the model, the evaluation
    labels must be the classifier's, training data must be there when a method needs it.
    """
    rt = runtime or get_runtime()
    params = params or MethodParams()
    source, plan = prepare(rt, model, methods, names, replace)
    labels = source.labels(rt.settings)
    data = eval_for(source, rt.store, eval_data, labels) if measure_variants else None
    train_set = train_for(source, [c for _, c in plan], train, labels, rt.store)
    staged: list[Staged] = []
    try:
        for name, chain in plan:
            staged.append(build_chain(source, name, chain, rt.settings, params, train_set, labels, log, rt.pool))
        report = None
        if data is not None:
            entries = [Entry(f"{source.spec.name} (original)", source.spec, "original")]
            entries += [Entry(s.name, s.spec, s.chain) for s in staged]
            rows = measure(entries, data, rt.settings, timing=timing, memory=memory, log=log)
            report = Report(source.spec.name, source.kind, data.source or "the evaluation set", len(data.texts), rows)
        registered = []
        while staged:
            s = staged[0]
            extra = {"eval": data.source if data else None, "train": train_set.source if train_set else None}
            metrics = metrics_of(report, s.name) if report else {}
            registered.append(register(rt, s, source.spec, replace=replace, metrics=metrics, extra=extra))
            staged.pop(0)
    finally:
        discard(staged)
    result = CompressResult(registered, report)
    if report is not None:
        result.report_files = report.write(report_dir or report_folder(rt.settings, source.spec.name))
    return result


def compare(model: str, others: Sequence[str], *, eval_data: Path | EvalSet | None = None, memory: bool = True,
            report_dir: Path | None = None, timing: Timing = DEFAULT_TIMING, runtime: Runtime | None = None,
            log: Log = stderr_log) -> tuple[Report, dict[str, Path]]:
    """Measure registered models (e.g. earlier variants) side by side with ``model``; registers nothing."""
    rt = runtime or get_runtime()
    source = source_of(rt.catalog.get(model))
    if not others:
        raise InputError("name the models to compare with --compare")
    specs = [rt.catalog.get(name) for name in others]
    for spec in specs:
        other = source_of(spec)
        if other.kind != source.kind:
            raise InputError(f"'{spec.name}' is {other.describe()}; it cannot be compared with '{model}', "
                             f"{source.describe()}")
    data = eval_for(source, rt.store, eval_data, source.labels(rt.settings))
    entries = [Entry(f"{source.spec.name} (original)", source.spec, "original")]
    entries += [Entry(spec.name, spec, str(spec.provenance.get("method", spec.backend))) for spec in specs]
    rows = measure(entries, data, rt.settings, timing=timing, memory=memory, log=log)
    report = Report(source.spec.name, source.kind, data.source or "the evaluation set", len(data.texts), rows)
    return report, report.write(report_dir or report_folder(rt.settings, source.spec.name))
