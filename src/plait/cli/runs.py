"""`plait runs list|show|compare`: the record of every `plait tune` run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from plait.cli.common import state

app = typer.Typer(help="Training runs of `plait tune`: parameters, metrics per epoch, plots.", no_args_is_help=True)


def _headline(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "-"
    for key in ("macro_f1", "rmse", "test_loss"):
        if isinstance(metrics.get(key), (int, float)):
            return f"{key} {metrics[key]:.4f}"
    return "-"


@app.command("list")
def list_(ctx: typer.Context,
          name: Annotated[str | None, typer.Option(help="only runs tuning this model name")] = None,
          limit: Annotated[int, typer.Option(help="most recent runs to show")] = 50,
          as_json: Annotated[bool, typer.Option("--json", help="one JSON object per run")] = False) -> None:
    """List runs, newest first."""
    from rich.console import Console
    from rich.table import Table

    from plait.adapt.tracking import list_runs

    runs = list_runs(state(ctx).runtime().store, name=name, limit=limit)
    if as_json:
        for run in runs:
            print(json.dumps(run.as_dict()))
        return
    if not runs:
        print("no runs yet; train one with `plait tune NAME --data PATH`")
        return
    # Only the metrics column wraps: short words cut to "me…" on an 80-column terminal say nothing.
    table = Table(show_edge=False, padding=(0, 1, 0, 0))
    for col in ("run", "name", "method", "task", "status", "model", "test", "s"):
        table.add_column(col, no_wrap=col != "test", justify="right" if col == "s" else "left")
    for run in runs:
        table.add_row(run.id, run.name, run.method, run.task, run.status, run.model or "-", _headline(run.metrics),
                      f"{run.duration_s:.0f}" if run.duration_s is not None else "-")
    Console().print(table)


@app.command()
def show(ctx: typer.Context,
         run: Annotated[str, typer.Argument(help="run id (or its start), or the model it made (triage@2)")],
         plot: Annotated[bool, typer.Option("--plot", help="(re)draw the PNG plots into the run's folder")] = False,
         as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One run: data, parameters, hardware, metrics per epoch and on the test split, plots."""
    from plait.adapt.tracking import epoch_metrics, get_run

    store = state(ctx).runtime().store
    record = get_run(store, run)
    epochs = epoch_metrics(store, record.id)
    run_dir = Path(record.run_dir)
    if plot:
        from plait.adapt import plots

        plots.learning_curves(epochs, run_dir / "learning_curves.png", title=f"{record.name} ({record.method})")
        metrics = record.metrics or {}
        if "confusion" in metrics and "labels" in metrics:
            try:
                plots.confusion_matrix(metrics["confusion"], metrics["labels"], run_dir / "confusion_matrix.png")
            except (TypeError, ValueError):
                pass  # multi-label runs keep a per-label 2×2 table, not one matrix
    if as_json:
        print(json.dumps({**record.as_dict(), "epochs": epochs}, indent=2))
        return
    data = record.as_dict()
    for key in ("id", "name", "status", "method", "task", "model", "data_source", "data_hash", "started_at",
                "finished_at", "duration_s", "error"):
        if data.get(key) not in (None, ""):
            print(f"{key:>12}: {data[key]}")
    print(f"{'params':>12}: {json.dumps(record.params)}")
    print(f"{'hardware':>12}: {json.dumps(record.hardware)}")
    scalars = {k: v for k, v in (record.metrics or {}).items() if isinstance(v, (int, float))}
    if scalars:
        print(f"{'test':>12}: " + ", ".join(f"{k} {v:.4f}" for k, v in scalars.items()))
    for split, by_key in epochs.items():
        for key, points in sorted(by_key.items()):
            if key in ("loss", "macro_f1", "accuracy", "rmse"):
                print(f"{split + ' ' + key:>22}: " + " ".join(f"{v:.4f}" for _, v in points))
    pngs = sorted(run_dir.glob("*.png")) if run_dir.exists() else []
    for png in pngs:
        print(f"{'plot':>12}: {png}")
    if (run_dir / "tensorboard").exists():
        print(f"{'tensorboard':>12}: tensorboard --logdir {run_dir / 'tensorboard'}")


@app.command()
def compare(ctx: typer.Context,
            runs: Annotated[list[str], typer.Argument(help="two or more run ids (or models they made)")],
            as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Runs side by side: the parameters that differ and every test metric."""
    from rich.console import Console
    from rich.table import Table

    from plait.adapt.tracking import compare_runs

    result = compare_runs(state(ctx).runtime().store, runs)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(show_edge=False, title=None if result["same_data"] else "note: the runs used different data")
    table.add_column("")
    for run_id in result["runs"]:
        table.add_column(run_id)

    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else "-" if value is None else str(value)

    table.add_row("model", *[cell(m) for m in result["models"]])
    table.add_row("method", *[cell(m) for m in result["methods"]])
    for key, values in result["params"].items():
        if key == "method":
            continue  # already shown
        table.add_row(key, *[cell(v) for v in values])
    for key, values in result["metrics"].items():
        table.add_row(key, *[cell(v) for v in values])
    table.add_row("seconds", *[cell(v) for v in result["duration_s"]])
    Console().print(table)
