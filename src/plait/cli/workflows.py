"""`plait run FILE` and `plait workflows validate|list|status|history|retry|correct|enable|bundled|webhook-key|steps`.

Thin commands over :mod:`plait.workflows`: each loads what it needs, calls one library function and
prints the result. `plait run` shows a progress bar on a terminal and a summary at the end.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plait.cli.common import err_console, state
from plait.errors import InputError

if TYPE_CHECKING:
    from plait.distributed.ray_tasks import RayTasks
    from plait.runtime import Runtime
    from plait.workflows.engine import EngineEvent, RunSummary
    from plait.workflows.spec import Workflow

app = typer.Typer(no_args_is_help=True, help="Durable workflows: validate, list, status, history, retry.")

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(root: typer.Typer) -> None:
    root.command(name="run")(run)


def _folder(rt: Runtime) -> Path:
    from plait.workflows.enabled import workflows_folder

    return workflows_folder(rt.settings.home)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"'{value}' is not a date; use ISO 8601, e.g. 2024-05-01") from exc
    return since if since.tzinfo else since.astimezone()


def run(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="a workflow file, or the name of an enabled or bundled workflow")],
    watch: Annotated[bool, typer.Option("--watch", "-w", help="keep running on the trigger until Ctrl-C")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would happen; change nothing")] = False,
    backfill: Annotated[bool, typer.Option("--backfill", help="re-read the source from its beginning and "
                                           "process what was skipped (start: now, --since)")] = False,
    since: Annotated[str | None, typer.Option(help="only items dated on or after this (ISO date); older ones "
                                              "are recorded as skipped")] = None,
    limit: Annotated[int | None, typer.Option(help="take at most this many new items", min=1)] = None,
    item: Annotated[list[str] | None, typer.Option("--item", help="add a manual item: a JSON object "
                                                   "(repeatable)")] = None,
    key: Annotated[str | None, typer.Option(help="the key of the --item (a key given twice is one item)")] = None,
    json_out: JsonOpt = False,
    executor: Annotated[str | None, typer.Option("--executor", help="where task steps run: local or ray "
                                                 "(default: the workflow's `executor`)")] = None,
    address: Annotated[str | None, typer.Option("--address", help="Ray cluster: auto, HOST:PORT or "
                                                "ray://HOST:10001 (default: RAY_ADDRESS, else this machine)")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers (default: as many as "
                                                "fit)")] = None,
    worker_cpus: Annotated[float | None, typer.Option("--worker-cpus", min=0.1, help="CPUs each Ray worker "
                                                      "reserves (default: the threads setting)")] = None,
) -> None:
    """Run a workflow in the foreground: read its trigger once, process every item, report.

    Items already done are never repeated; a run that was killed resumes where it stopped.
    """
    from plait.workflows.enabled import resolve
    from plait.workflows.engine import Engine
    from plait.workflows.loader import load_workflow

    rt = state(ctx).runtime()
    workflow = load_workflow(resolve(file, _folder(rt)))
    manual = []
    for raw in item or []:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(f"--item is not JSON ({exc.msg}); e.g. --item '{{\"text\": \"hello\"}}'") from exc
        if not isinstance(value, dict):
            raise InputError("--item must be a JSON object, e.g. '{\"text\": \"hello\"}'")
        manual.append(value)
    if key and len(manual) != 1:
        raise InputError("--key goes with exactly one --item")
    display = _Display(workflow.name, enabled=not json_out and sys.stderr.isatty())
    workflow, tasks = _task_executor(rt, workflow, executor, address, workers, worker_cpus)
    engine = Engine(workflow, rt, dry_run=dry_run, on_event=display.event, tasks=tasks)
    for value in manual:
        engine.submit(value, key)
    # SIGTERM (a service manager, `kill`) stops the run like Ctrl-C but cleanly: after the steps in progress.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: engine.stop()) if main_thread else None
    with display:
        try:
            summary = engine.run(watch=watch, backfill=backfill, since=_parse_since(since), limit=limit)
        except KeyboardInterrupt:
            err_console().print(f"stopped; unfinished items of '{workflow.name}' stay pending and resume next run")
            raise
        finally:
            if main_thread:
                signal.signal(signal.SIGTERM, previous)
            if tasks is not None:
                tasks.close()
    _report(summary, json_out)
    if summary.trigger_error:
        raise typer.Exit(7)
    if summary.failed:
        raise typer.Exit(1)


def _task_executor(rt: Runtime, workflow: Workflow, executor: str | None, address: str | None,
                   workers: int | None, worker_cpus: float | None) -> tuple[Workflow, RayTasks | None]:
    """The workflow as it runs here (``--executor`` overrides its ``executor``) and, for Ray, the workers
    the command owns (made here so they get --address and --workers)."""
    if executor not in (None, "local", "ray"):
        raise InputError(f"unknown executor '{executor}'; choose local or ray")
    kind = executor or workflow.executor
    if kind == "local":
        if address or workers or worker_cpus:
            raise InputError("--address, --workers and --worker-cpus go with --executor ray")
        return workflow.model_copy(update={"executor": "local"}), None
    from plait.distributed.cluster import import_ray
    from plait.distributed.ray_tasks import RayTasks, workflow_models

    import_ray()
    return workflow, RayTasks(rt, address=address, workers=workers, worker_cpus=worker_cpus,
                              models=workflow_models(workflow, rt))


class _Display:
    """A progress bar fed by the engine's events (from its worker threads; rich is thread-safe)."""

    def __init__(self, name: str, *, enabled: bool) -> None:
        self.name, self.enabled = name, enabled
        self.bar: Any = None
        self.task: Any = None
        self.total = 0

    def __enter__(self) -> _Display:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[note]}"), TimeElapsedColumn(), console=err_console(),
                                transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.name, total=None, note="reading trigger")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def event(self, event: EngineEvent) -> None:
        if self.bar is None:
            if event.kind in ("failed", "trigger_error", "flush_error") and not self.enabled:
                print(f"plait: {event.kind.replace('_', ' ')}: {event.key + ': ' if event.key else ''}"
                      f"{event.message}", file=sys.stderr)
            return
        if event.kind == "added":
            self.total += event.count
            self.bar.update(self.task, total=self.total)
        elif event.kind == "started":
            self.bar.update(self.task, note=event.key[:40] if event.key else "")
            if self.total == 0:
                self.total = 1
                self.bar.update(self.task, total=self.total)
        elif event.kind in ("done", "failed"):
            self.bar.advance(self.task)
            if event.kind == "failed":
                self.bar.console.print(f"[red]failed[/red] {event.key}: {event.message}", markup=True,
                                       highlight=False)
        elif event.kind == "retry":
            self.bar.console.print(f"[yellow]will retry[/yellow] {event.key}: {event.message}", highlight=False)
        elif event.kind in ("trigger_error", "flush_error"):
            self.bar.console.print(f"[red]{event.kind.replace('_', ' ')}[/red]: {event.message}", highlight=False)
        elif event.kind == "idle":
            self.bar.update(self.task, note=event.message or "")


def _report(summary: RunSummary, json_out: bool) -> None:
    if json_out:
        from dataclasses import asdict

        print(json.dumps(asdict(summary), indent=2, default=str))
        return
    word = "dry run" if summary.dry_run else "run"
    line = (f"{summary.workflow}: {word} {summary.run_id} {summary.status}: {summary.added} new item(s), "
            f"{summary.done} done, {summary.failed} failed")
    if summary.retried:
        line += f", {summary.retried} retried"
    if summary.skipped:
        line += (f", {summary.skipped} skipped (there before start: now, or older than --since; --backfill "
                 "processes them)")
    print(line)
    if summary.trigger_error:
        print(f"trigger: {summary.trigger_error}", file=sys.stderr)
    for error in summary.errors[:20]:
        print(f"  failed {error}", file=sys.stderr)
    if len(summary.errors) > 20:
        print(f"  … and {len(summary.errors) - 20} more: `plait workflows status {summary.workflow}`", file=sys.stderr)
    for preview in summary.previews[:20]:
        print(json.dumps(preview, ensure_ascii=False, default=str)[:2000])


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="workflow files to check")]) -> None:
    """Check workflow files without running them: every problem with its file, line and field."""
    from plait.workflows.errors import SpecError
    from plait.workflows.loader import load_workflow

    bad = 0
    for file in files:
        try:
            wf = load_workflow(file)
        except SpecError as exc:
            bad += 1
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            continue
        print(f"{file}: ok — '{wf.name}', trigger {wf.trigger.type}, {len(wf.steps)} step(s)"
              + ("" if wf.enabled else " (disabled)"))
    if bad:
        raise typer.Exit(4)


@app.command(name="list")
def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """The enabled workflows ($PLAIT_HOME/workflows) and every workflow with recorded items."""
    from plait.workflows.enabled import discover
    from plait.workflows.state import workflow_names
    from plait.workflows.status import workflow_status

    rt = state(ctx).runtime()
    found = {f.name: f for f in discover(_folder(rt))}
    rows: list[dict[str, Any]] = []
    for name in sorted(set(found) | set(workflow_names(rt.store))):
        st = workflow_status(rt.store, name, failed_limit=0, runs=1)
        f = found.get(name)
        rows.append({"name": name, "file": str(f.path) if f else None,
                     "enabled": bool(f and f.workflow and f.workflow.enabled),
                     "trigger": f.workflow.trigger.type if f and f.workflow else None,
                     "problem": str(f.error) if f and f.error else None, "counts": st.counts,
                     "running": st.running is not None,
                     "last_run": st.last_runs[0] if st.last_runs else None})
    if json_out:
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        print(f"no workflows yet; add one with `plait workflows enable inbox-triage` (see `plait workflows bundled`) "
              f"or put a .yml file in {_folder(rt)}")
        return
    for r in rows:
        c = r["counts"]
        flag = "running" if r["running"] else ("enabled" if r["enabled"] else "not enabled")
        last = r["last_run"]
        print(f"{r['name']:<24} {flag:<11} {r['trigger'] or '-':<9} done {c['done']:>5}  failed {c['failed']:>4}  "
              f"pending {c['pending']:>4}  last run {_when(last['started_at']) if last else '-'}")
        if r["problem"]:
            print(f"  problem: {r['problem']}")


@app.command()
def status(ctx: typer.Context, name: Annotated[str, typer.Argument(help="the workflow's name")],
           json_out: JsonOpt = False) -> None:
    """Items by state, the live run, recent runs, failed items with their errors, sink effects."""
    from plait.workflows.status import workflow_status

    rt = state(ctx).runtime()
    st = workflow_status(rt.store, name)
    if json_out:
        print(json.dumps(st.as_dict(), indent=2, default=str))
        return
    if not st.total and not st.last_runs:
        raise InputError(f"workflow '{name}' has never run; `plait workflows list` shows the known ones")
    c = st.counts
    print(f"{name}: {st.total} item(s): {c['done']} done, {c['failed']} failed, {c['pending']} pending, "
          f"{c['running']} running" + (f", {c['skipped']} skipped (start: now)" if c["skipped"] else "")
          + f" — {st.progress:.0%} finished")
    if st.running:
        print(f"running now: run {st.running['run_id']} (pid {st.running['pid']}, last heartbeat "
              f"{_when(st.running['heartbeat_at'])})")
    for r in st.last_runs[:3]:
        print(f"run {r['id']} ({r['kind']}) {r['status']}: started {_when(r['started_at'])}, "
              f"{r['items_added']} added, {r['items_done']} done, {r['items_failed']} failed"
              + (f" — {r['error']}" if r["error"] else ""))
    if st.effects:
        print("effects: " + ", ".join(f"{k} {v}" for k, v in sorted(st.effects.items())))
    if st.failed:
        print("failed items (retry with `plait workflows retry " + name + "`):")
        for f in st.failed:
            print(f"  {f['key']}: {f['error']}")


@app.command()
def history(ctx: typer.Context, name: Annotated[str, typer.Argument(help="the workflow's name")],
            limit: Annotated[int, typer.Option(help="runs to show", min=1)] = 20,
            effects: Annotated[int, typer.Option(help="latest sink effects to show", min=0)] = 20,
            json_out: JsonOpt = False) -> None:
    """Past runs, and the latest things the workflow's sinks did."""
    from dataclasses import asdict

    from plait.workflows.state import WorkflowState

    rt = state(ctx).runtime()
    ws = WorkflowState(rt.store, name)
    runs = ws.runs(limit)
    done = ws.effects(100_000)[-effects:] if effects else []
    if json_out:
        print(json.dumps({"runs": [asdict(r) for r in runs], "effects": [asdict(e) for e in done]}, indent=2,
                         default=str))
        return
    if not runs:
        raise InputError(f"workflow '{name}' has never run")
    for r in runs:
        took = f"{r.finished_at - r.started_at:.1f}s" if r.finished_at else "-"
        print(f"run {r.id:<5} {r.kind:<8} {r.status:<11} {_when(r.started_at)}  took {took:<8} "
              f"added {r.items_added:<5} done {r.items_done:<5} failed {r.items_failed}"
              + (f"  {r.error}" if r.error else ""))
    if done:
        print("latest effects:")
        for e in done:
            detail = e.detail if isinstance(e.detail, dict) else {}
            what = detail.get("path") or detail.get("to") or detail.get("target") or detail.get("draft") \
                or detail.get("url") or ""
            print(f"  {_when(e.created_at)}  {e.step:<12} {e.item_key[:50]:<50} {what}")


@app.command()
def retry(ctx: typer.Context, name: Annotated[str, typer.Argument(help="the workflow's name")],
          item: Annotated[list[str] | None, typer.Option("--item", help="only this item key (repeatable)")] = None,
          run_now: Annotated[bool, typer.Option("--run/--no-run", help="run them now (needs the workflow's "
                                                "file enabled, or --file)")] = True,
          file: Annotated[Path | None, typer.Option(help="the workflow file, if it is not enabled")] = None) -> None:
    """Put failed items back to pending (fresh attempts), and run them."""
    from plait.workflows.enabled import resolve
    from plait.workflows.engine import Engine
    from plait.workflows.loader import load_workflow
    from plait.workflows.state import WorkflowState

    rt = state(ctx).runtime()
    count = WorkflowState(rt.store, name).retry(item)
    print(f"{name}: {count} failed item(s) back to pending")
    if not run_now or not count:
        return
    workflow = load_workflow(file if file else resolve(name, _folder(rt)))
    display = _Display(workflow.name, enabled=sys.stderr.isatty())
    with display:
        summary = Engine(workflow, rt, on_event=display.event).run(intake=False, kind="retry")
    _report(summary, False)
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def correct(ctx: typer.Context, name: Annotated[str, typer.Argument(help="the workflow's name")],
            key: Annotated[str, typer.Argument(help="the item's key (as the digest's JSON or `status` shows)")],
            label: Annotated[str, typer.Argument(help="the label it should carry")],
            file: Annotated[Path | None, typer.Option(help="the workflow file, if it is not enabled")] = None) -> None:
    """Correct an item's label: its text becomes an example for the workflow's classifier (next run)."""
    from plait.workflows.corrections import TUNE_AT
    from plait.workflows.corrections import correct as record
    from plait.workflows.enabled import resolve
    from plait.workflows.loader import load_workflow

    rt = state(ctx).runtime()
    workflow = load_workflow(file if file else resolve(name, _folder(rt)))
    done = record(rt.store, workflow, rt.settings.home, key, label)
    counts = ", ".join(f"{k}: {v}" for k, v in done.counts.items())
    print(f"{name}: {key} is now '{label}' ({done.path}); corrections per label: {counts}")
    if done.tune:
        print(f"every label has {TUNE_AT}+ corrections: `plait tune` on {Path(done.path).parent.parent} "
              "would now beat few-shot")


@app.command()
def enable(ctx: typer.Context,
           workflow: Annotated[str, typer.Argument(help="a workflow file, or a bundled workflow's name")],
           replace: Annotated[bool, typer.Option("--replace", help="overwrite an enabled file of that name")] = False
           ) -> None:
    """Copy a workflow into $PLAIT_HOME/workflows, where `plait up` runs it."""
    from plait.workflows.enabled import enable as enable_workflow

    rt = state(ctx).runtime()
    target = enable_workflow(workflow, _folder(rt), replace=replace)
    print(f"enabled: {target} (edit it to point at your folders; `plait up` runs it)")


@app.command()
def bundled() -> None:
    """The workflows that come with plait (`plait workflows enable NAME` to use one)."""
    from plait.workflows.enabled import bundled as bundled_files
    from plait.workflows.loader import load_workflow

    for path in bundled_files():
        wf = load_workflow(path)
        first = wf.description.strip().splitlines()[0] if wf.description.strip() else ""
        print(f"{wf.name:<22} {wf.trigger.type:<9} {first}")


@app.command(name="webhook-key")
def webhook_key(ctx: typer.Context, name: Annotated[str, typer.Argument(help="the workflow's name")]) -> None:
    """Create (or replace) the key senders use for this workflow's webhook; shown once."""
    from plait.workflows.webhook_keys import create_webhook_key

    rt = state(ctx).runtime()
    secret = create_webhook_key(rt.store, name)
    print(secret)
    err_console().print(f"POST to /v1/workflows/{name}/webhook with header 'X-Plait-Webhook-Key: <key>'; "
                        "the key is not shown again", highlight=False)


@app.command()
def steps() -> None:
    """What a workflow can use: triggers, tasks (installed ones), and sinks."""
    from plait.tasks.registry import registry
    from plait.workflows.sinks import SINKS
    from plait.workflows.steps import FUNCTIONS
    from plait.workflows.triggers import TRIGGERS

    print("triggers: " + ", ".join(sorted(TRIGGERS)))
    print("tasks:")
    for task in registry().all():
        print(f"  {task.name:<13} {task.summary}")
    print("workflow functions: " + ", ".join(sorted(FUNCTIONS)))
    print("step kinds: task, template, set, route, map, http, sink")
    print("sinks: " + ", ".join(sorted(SINKS)))
