"""`plait compress`: quantize, prune, distil or export a model; each variant a catalog entry, with a report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plait.cli.common import err_console, state


def register(app: typer.Typer) -> None:
    app.command()(compress)


def compress(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="catalog name of the model to compress")],
    method: Annotated[list[str] | None, typer.Option(
        "--method", "-M", help="method, or methods joined by '+' (distill+onnx-int8); repeat for several "
                               "variants; --list shows those that apply")] = None,
    name: Annotated[list[str] | None, typer.Option(
        "--name", help="name of each variant (default MODEL-METHOD; with a budget, MODEL-fit)")] = None,
    eval_data: Annotated[Path | None, typer.Option(
        "--eval", help="held-out data to measure on: labelled examples (classifiers), documents (embedders, "
                       "default Lee news), text (chat models, default Lee news)")] = None,
    train: Annotated[Path | None, typer.Option(
        "--train", help="texts to distil on: labelled examples or one text per line")] = None,
    budget_ms: Annotated[float | None, typer.Option(
        "--budget-ms", help="latency budget: p50 at batch 1 on this machine, ms")] = None,
    budget_mb: Annotated[float | None, typer.Option("--budget-mb", help="size budget: MB on disk")] = None,
    max_loss: Annotated[float, typer.Option(
        "--max-loss", help="with a budget: most quality a variant may lose (accuracy or MRR points; "
                           "perplexity for chat models)")] = 2.0,
    amount: Annotated[float, typer.Option(help="fraction pruned (prune, prune-heads, prune-neurons)")] = 0.3,
    layers: Annotated[int | None, typer.Option(help="layers kept (drop-layers, distill; default half)")] = None,
    epochs: Annotated[int, typer.Option(help="training epochs (distill, repair after pruning)")] = 4,
    report_dir: Annotated[Path | None, typer.Option(
        "--report-dir", help="where report.json/.html go (default ~/.plait/reports/compress/…)")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="build and register without measuring")] = False,
    no_memory: Annotated[bool, typer.Option(
        "--no-memory", help="skip peak-memory probes (one process per model)")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="rebuild variants that already exist")] = False,
    compare_with: Annotated[list[str] | None, typer.Option(
        "--compare", help="measure these registered models against MODEL (no new variant)")] = None,
    list_methods: Annotated[bool, typer.Option("--list", help="list the methods that apply to MODEL")] = False,
) -> None:
    """Make smaller, faster variants of MODEL and report size, speed and quality against it."""
    from plait.compress.budget import compress_to_budget
    from plait.compress.methods import MethodParams, applicable
    from plait.compress.source import source_of
    from plait.compress.variants import compare
    from plait.compress.variants import compress as compress_model

    rt = state(ctx).runtime()
    console = err_console()

    def log(message: str) -> None:
        console.print(message, markup=False, highlight=False)

    if list_methods:
        source = source_of(rt.catalog.get(model))
        typer.echo(f"{model} is {source.describe()}; methods that apply (chain with '+'):")
        for m in applicable(source):
            extra = " (needs --train)" if m.needs_train and source.kind == "classifier" else ""
            typer.echo(f"  {m.name:<16} {m.summary}{extra}")
        return
    if compare_with:
        report, files = compare(model, compare_with, eval_data=eval_data, memory=not no_memory,
                                report_dir=report_dir, runtime=rt, log=log)
        typer.echo(report.text())
        typer.echo(f"report: {files['html']} and {files['json']}")
        return
    params = MethodParams(amount=amount, layers=layers, epochs=epochs)
    if budget_ms is not None or budget_mb is not None:
        if name and len(name) > 1:
            raise typer.BadParameter("a budget registers one model: give at most one --name")
        result = compress_to_budget(model, budget_ms=budget_ms, budget_mb=budget_mb, eval_data=eval_data,
                                    train=train, max_loss=max_loss, name=name[0] if name else None,
                                    methods=method or None, params=params, report_dir=report_dir, runtime=rt,
                                    log=log)
        typer.echo(result.report.text())
        typer.echo(f"registered {result.chosen.name} ({result.chosen.provenance['method']}); "
                   f"report: {result.report_files['html']}")
        return
    out = compress_model(model, method or [], names=name or None, params=params, eval_data=eval_data, train=train,
                         measure_variants=not no_report, memory=not no_memory, report_dir=report_dir,
                         replace=replace, runtime=rt, log=log)
    if out.report is not None:
        typer.echo(out.report.text())
    for spec in out.variants:
        typer.echo(f"registered {spec.name} ({spec.backend}) from {model} by {spec.provenance['method']}")
    if out.report_files:
        typer.echo(f"report: {out.report_files['html']} and {out.report_files['json']}")
