"""Runs a workflow: items from its trigger, in batches, through its steps, durably.

The engine is a loop over batches (the trigger is a generator; each batch of its items is recorded with
the trigger's cursor, then processed), and keeps each item's progress in SQLite
(:mod:`plait.workflows.state`):

- every step of every item is ``running`` → ``done``/``skipped``/``failed``, with its output; a step
  already done is never run again, so a killed run resumes at the step it was in;
- a sink's effect and its ledger row are written together, and sinks act idempotently (same key, same
  file, same row), so each effect happens exactly once even across ``kill -9``;
- a failing step is retried with exponential backoff (``retry``); errors that retrying cannot fix (bad
  input, a template error, an unknown task) fail the item at once; a failed item keeps its error and can
  be retried later (``plait workflows retry``); other items carry on;
- ``concurrency`` items run at once; a step's ``concurrency`` limits it further (model tasks default to 1);
- ``dry_run`` records nothing in the real database and makes sinks only describe what they would do;
- ``backfill`` re-reads the source from its beginning and processes what ``start: now`` left out.

Scheduling (when to look at the trigger again) is the trigger's: :meth:`Engine.run` with ``watch=True``
waits on it; the background runner (:mod:`plait.workflows.runner`) runs one such loop per workflow.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from plait.errors import CapabilityError, InputError, MissingDependency, PlaitError, StoreError
from plait.store import Store
from plait.store.failures import is_disk_failure, store_error
from plait.workflows.clock import Clock
from plait.workflows.context import StepContext
from plait.workflows.errors import StepError, TemplateError, TriggerError
from plait.workflows.outputs import output_folder
from plait.workflows.spec import MapStep, RouteStep, SinkStep, TaskStep, Workflow
from plait.workflows.state import ItemRow, StepRecord, WorkflowState
from plait.workflows.steps import run_http, run_set, run_task, run_template, to_jsonable
from plait.workflows.templates import Templates, key_slug

if TYPE_CHECKING:
    import httpx

    from plait.runtime import Runtime
    from plait.tasks.registry import Task
    from plait.workflows.sinks import Sink
    from plait.workflows.triggers import Trigger, TriggerItem

log = logging.getLogger("plait.workflows")

# Errors a retry cannot fix: the item fails at once with the message.
PERMANENT = (InputError, StepError, MissingDependency, CapabilityError)
MAX_WAIT_SECONDS = 3600.0


class TaskExecutor(Protocol):
    """Runs a task step's checked request elsewhere and returns the task's JSON (see plait.distributed)."""

    @property
    def parallelism(self) -> int: ...

    def __call__(self, task: Task, request: Any, document: Any = None) -> Any: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class EngineEvent:
    kind: str  # added | started | done | failed | retry | trigger_error | flush_error | idle
    key: str | None = None
    message: str | None = None
    count: int = 0


@dataclass
class RunSummary:
    workflow: str
    run_id: int
    status: str = "running"  # finished | failed | interrupted | stopped
    added: int = 0
    done: int = 0
    failed: int = 0
    retried: int = 0
    skipped: int = 0
    dry_run: bool = False
    trigger_error: str | None = None
    errors: list[str] = field(default_factory=list)  # "key: message" of items that failed in this run
    previews: list[dict[str, Any]] = field(default_factory=list)  # dry run: what each item's sinks would do


class _Stopped(Exception):
    pass


class _StepFailed(Exception):
    def __init__(self, message: str, retry_at: float | None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class Engine:
    def __init__(self, workflow: Workflow, runtime: Runtime | None = None, *, clock: Clock | None = None,
                 dry_run: bool = False, on_event: Callable[[EngineEvent], None] | None = None,
                 http_transport: httpx.BaseTransport | None = None, output_dir: Path | None = None,
                 tasks: TaskExecutor | None = None) -> None:
        from plait.runtime import get_runtime
        from plait.workflows.loader import check_workflow
        from plait.workflows.sinks import SinkEnv, make_sink
        from plait.workflows.triggers import TriggerEnv, make_trigger

        check_workflow(workflow)  # a workflow built in Python gets the same checks as a file
        self.workflow = workflow
        self.runtime = runtime or get_runtime()
        self.clock = clock or Clock()
        self.dry_run = dry_run
        self.on_event = on_event
        self._transport = http_transport
        self._http: httpx.Client | None = None
        self._http_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.signal = threading.Event()  # set to wake a waiting loop: stop, new webhook items, file events
        self.templates = Templates()
        self.durable = WorkflowState(self.runtime.store, workflow.name, self.clock)
        self._tmp: Path | None = None
        if dry_run:
            # A dry run keeps its records in a throwaway database; it reads the real one to skip known items.
            self._tmp = Path(tempfile.mkdtemp(prefix="plait-dry-run-"))
            # Encrypted like the real one (the throwaway copy holds the same items), with the same key.
            self.state = WorkflowState(Store(self._tmp / "dry-run.db", key=self.runtime.store.key), workflow.name,
                                       self.clock)
        else:
            self.state = self.durable
        self.output_dir = output_dir or self._output_dir()
        self.trigger: Trigger = make_trigger(workflow, TriggerEnv(
            workflow=workflow.name, base_dir=workflow.base_dir, clock=self.clock, known=self._known,
            signal=self.signal, http=self.http, network=self._policy()))
        self.sinks: dict[str, Sink] = {}
        # Where task steps run (None: in this process); the ledger and sinks stay here either way.
        self._own_tasks = tasks is None and workflow.executor == "ray"
        self.tasks = tasks if tasks is not None else self._ray_tasks() if self._own_tasks else None
        self._limits: dict[str, threading.Semaphore] = {}
        from plait.workflows.spec import walk_steps

        for _, step in walk_steps(workflow.steps):
            if isinstance(step, SinkStep):
                self.sinks[step.step_id] = make_sink(step, SinkEnv(
                    workflow=workflow.name, step=step.step_id, output_dir=self.output_dir,
                    base_dir=workflow.base_dir, store=self.runtime.store, clock=self.clock,
                    templates=self.templates, dry_run=dry_run))
            # Model tasks share one local model, so one item at a time; workers each have their own.
            limit = step.concurrency or (1 if isinstance(step, TaskStep) and self.tasks is None else None)
            if limit is not None and (workflow.concurrency > 1 or self.tasks is not None):
                self._limits[step.step_id] = threading.Semaphore(limit)
        self._touched: set[str] = set()
        self._touched_lock = threading.Lock()
        self._run_id = 0
        self._summary: RunSummary | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._pool_made = False

    # -- public ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask a running loop to stop after the steps in progress (items not finished stay pending)."""
        self.stop_event.set()
        self.signal.set()

    def wake(self) -> None:
        self.signal.set()

    def submit(self, data: dict[str, Any], key: str | None = None, at: float | None = None) -> str:
        """Record one item given by hand (manual runs); returns its key. A key given twice is one item."""
        key = self.state.submit(data, key, at)
        self.wake()
        return key

    def run(self, *, watch: bool = False, backfill: bool = False, since: datetime | None = None,
            limit: int | None = None, intake: bool = True, kind: str | None = None) -> RunSummary:
        """One pass (read the trigger, process everything due, wait for retries), or with ``watch`` a loop
        until :meth:`stop`. Returns what happened; item failures are in the summary, not raised."""
        kind = kind or ("dry-run" if self.dry_run else "backfill" if backfill else "watch" if watch else "run")
        run_id = self.state.start_run(kind)
        heartbeat = self.state.keep_alive(run_id)
        self._run_id = run_id
        summary = self._summary = RunSummary(self.workflow.name, run_id, dry_run=self.dry_run)
        since_ts = since.timestamp() if since else None
        status, error = "interrupted", None
        try:
            if backfill and not self.dry_run:
                summary.added += self.state.unskip(since_ts)
            if not self.dry_run:  # half-written files a killed run left (this run holds the lock)
                from plait.workflows.sinks import remove_temporaries

                remove_temporaries(self.output_dir)
            self._flush_sinks()  # files a killed run gathered entries for but did not write
            while True:
                if intake:
                    self._intake(backfill=backfill, since=since_ts, limit=limit)
                    backfill = False  # only the first pass re-reads from the beginning
                self._drain(wait_retries=not watch)
                if not watch or self.stop_event.is_set():
                    break
                self._wait()
                if self.stop_event.is_set():
                    break
            status = "stopped" if self.stop_event.is_set() and watch else \
                "failed" if summary.trigger_error else "finished"
            error = summary.trigger_error
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            summary.status = status
            self._end_pool()  # items still in flight (after an error) end before the run is recorded as ended
            heartbeat.stop()
            try:
                self._flush_sinks()
            finally:
                try:
                    self.state.finish_run(run_id, status, error)
                except sqlite3.Error:
                    if error is None:
                        raise
                    # The run is already failing (a full disk): keep its error, not this one. The next
                    # start finds the run unfinished and marks it interrupted.
                    log.warning("workflow %s: could not record the end of run %s", self.workflow.name, run_id)
                finally:
                    self.close()
        return summary

    def close(self) -> None:
        if self.tasks is not None and self._own_tasks:
            self.tasks.close()
        self.trigger.close()
        for sink in self.sinks.values():
            sink.close()
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._tmp is not None:
            self.state.store.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- intake ---------------------------------------------------------------------------------

    def _known(self, keys: Sequence[str]) -> set[str]:
        known = self.durable.known(keys)
        if self.dry_run:
            known |= self.state.known(keys)
        return known

    def _intake(self, *, backfill: bool, since: float | None, limit: int | None) -> None:
        """Read the trigger; every batch of new items is recorded with its cursor, then processed."""
        summary = self._summary
        assert summary is not None
        summary.trigger_error = None  # a source that is back after an outage is no longer an error
        trigger_type = self.workflow.trigger.type
        stored = self.durable.cursor(trigger_type)
        first_run = stored is None and not any(self.durable.counts().values())
        cursor: dict[str, Any] = {} if backfill or stored is None else dict(stored)
        state = "skipped" if first_run and self.workflow.trigger.start == "now" and not backfill else "pending"
        batch: list[tuple[TriggerItem, str]] = []
        taken = 0
        try:
            for item in self.trigger.scan(cursor):
                # Older than --since: recorded as skipped, not dropped, since the cursor moves past it (mail
                # and feeds never give it again); `--backfill --since EARLIER` takes it later.
                old = since is not None and item.at is not None and item.at < since
                batch.append((item, "skipped" if old else state))
                if not old:
                    taken += 1
                if len(batch) >= self.workflow.batch_size or (limit is not None and taken >= limit):
                    self._record(batch, dict(cursor))
                    batch = []
                    self._drain(wait_retries=False)
                    if self.stop_event.is_set():
                        return
                if limit is not None and taken >= limit:
                    return
            self._record(batch, dict(cursor))
        except TriggerError as exc:
            self._record(batch, None)  # what was read before the failure is kept
            summary.trigger_error = str(exc)
            self._emit(EngineEvent("trigger_error", message=str(exc)))
            log.warning("workflow %s: %s", self.workflow.name, exc)

    def _record(self, batch: list[tuple[TriggerItem, str]], cursor: dict[str, Any] | None) -> None:
        """The batch's items in their states; the cursor goes with the last write, so a killed run reads
        again what it had not recorded."""
        skipped = [i for i, state in batch if state == "skipped"]
        if skipped:
            self._add(skipped, None, "skipped")
        self._add([i for i, state in batch if state == "pending"], cursor, "pending")

    def _add(self, items: list[TriggerItem], cursor: dict[str, Any] | None, state: str) -> None:
        if not items and cursor is None:
            return
        added = self.state.add_items(((i.key, i.data, i.at) for i in items), cursor=cursor,
                                     trigger=self.workflow.trigger.type, state=state, run_id=self._run_id)
        assert self._summary is not None
        if state == "skipped":
            self._summary.skipped += len(added)
        else:
            self._summary.added += len(added)
        if added:
            self.state.heartbeat(self._run_id, added=len(added))
            self._emit(EngineEvent("added", count=len(added) if state == "pending" else 0))

    # -- processing -----------------------------------------------------------------------------

    def _drain(self, *, wait_retries: bool) -> None:
        """Process pending items until none is due; with ``wait_retries``, also wait for backoffs to end."""
        while not self.stop_event.is_set():
            rows = self.state.claim(self.workflow.batch_size, self._run_id)
            if not rows:
                due = self.state.next_due() if wait_retries else None
                if due is None:
                    return
                self._emit(EngineEvent("idle", message="waiting for retries"))
                self.clock.sleep(max(0.0, due - self.clock.now()), self.stop_event)
                continue
            pool = self._items_pool()
            results = list(pool.map(self._process, rows)) if pool else [self._process(r) for r in rows]
            self._flush_sinks()
            self.state.heartbeat(self._run_id, done=results.count("done"), failed=results.count("failed"))

    def _items_pool(self) -> ThreadPoolExecutor | None:
        """Threads for items processed at once (None: one at a time): the workflow's concurrency, or what
        the task executor's workers can take. Made once there is work (a Ray executor starts its workers to
        answer), then kept until the run ends: each thread keeps database connections of its own, so a
        new pool per batch would leave a pool's worth of them open every time `plait up` wakes."""
        if not self._pool_made:
            self._pool_made = True
            concurrency = max(self.workflow.concurrency, self.tasks.parallelism if self.tasks is not None else 1)
            if concurrency > 1:
                self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix=f"plait-wf-{self.workflow.name}")
        return self._pool

    def _end_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pool, self._pool_made = None, False

    def _wait(self) -> None:
        now = self.clock.now()
        timeout = min(self.trigger.next_wait(now), MAX_WAIT_SECONDS)
        due = self.state.next_due()
        if due is not None:
            timeout = min(timeout, max(0.0, due - now))
        deadline = now + timeout
        while not self.signal.is_set() and self.clock.now() < deadline:
            self.clock.sleep(deadline - self.clock.now(), self.signal)
        self.signal.clear()

    def _process(self, row: ItemRow) -> str:
        summary = self._summary
        assert summary is not None
        self._emit(EngineEvent("started", key=row.key))
        variables = self._variables(row)
        records = self.state.steps(row.id)
        try:
            self._run_steps(self.workflow.steps, "", variables, records, row)
        except _Stopped:
            self.state.item_release(row.id)
            return "released"
        except _StepFailed as failure:
            if failure.retry_at is not None:
                self.state.item_retry(row.id, str(failure), failure.retry_at)
                summary.retried += 1
                self._emit(EngineEvent("retry", key=row.key, message=str(failure)))
                return "retry"
            self.state.item_failed(row.id, str(failure))
            summary.failed += 1
            summary.errors.append(f"{row.key}: {failure}")
            self._emit(EngineEvent("failed", key=row.key, message=str(failure)))
            return "failed"
        self.state.item_done(row.id)
        summary.done += 1
        if self.dry_run:
            summary.previews.append({"key": row.key, "steps": {k: v for k, v in variables["steps"].items()}})
        self._emit(EngineEvent("done", key=row.key))
        return "done"

    def _variables(self, row: ItemRow) -> dict[str, Any]:
        received = datetime.fromtimestamp(row.created_at, UTC)
        return {"item": dict(row.data), "key": row.key, "key_slug": key_slug(row.key), "vars": self.workflow.vars,
                "workflow": {"name": self.workflow.name, "run": self._run_id, "output": str(self.output_dir)},
                "steps": {},
                "received": received, "now": self.clock.datetime()}

    def _run_steps(self, steps: Sequence[Any], prefix: str, variables: dict[str, Any],
                   records: dict[str, StepRecord], row: ItemRow) -> None:
        for step in steps:
            path = prefix + step.step_id
            fingerprint = step.fingerprint()
            record = records.get(path)
            if record is not None and record.spec_hash == fingerprint and record.state in ("done", "skipped"):
                self._restore(step, path, record, variables, records, row)
                continue
            if self.stop_event.is_set():
                raise _Stopped
            if step.when is not None:
                try:
                    wanted = bool(self.templates.evaluate(step.when, variables))
                except TemplateError as exc:
                    self._fail(row, path, fingerprint, f"`when`: {exc}", permanent=True, attempt=1)
                if not wanted:
                    self.state.step_done(row.id, path, fingerprint, None, state="skipped")
                    self._set(step, None, variables)
                    continue
            if isinstance(step, RouteStep):
                index = self._choose(step, path, fingerprint, variables, row)
                decision = {"branch": step.route[index].name or index, "index": index} if index is not None else None
                self.state.step_done(row.id, path, fingerprint, decision)
                self._restore(step, path, StepRecord(path, "done", 0, decision, None, fingerprint), variables,
                              records, row)
            elif isinstance(step, MapStep):
                try:
                    elements = self.templates.evaluate(step.map, variables)
                except TemplateError as exc:
                    self._fail(row, path, fingerprint, f"`map`: {exc}", permanent=True, attempt=1)
                if isinstance(elements, dict):
                    elements = list(elements.items())
                if not isinstance(elements, list | tuple):
                    self._fail(row, path, fingerprint, f"`map` gave {type(elements).__name__}, not a list",
                               permanent=True, attempt=1)
                decision = {"elements": to_jsonable(list(elements))}
                self.state.step_done(row.id, path, fingerprint, decision)
                self._restore(step, path, StepRecord(path, "done", 0, decision, None, fingerprint), variables,
                              records, row)
            else:
                self._set(step, self._attempt(step, path, fingerprint, record, variables, row), variables)

    def _choose(self, step: RouteStep, path: str, fingerprint: str, variables: dict[str, Any],
                row: ItemRow) -> int | None:
        for index, branch in enumerate(step.route):
            if branch.when is None:
                return index
            try:
                if self.templates.evaluate(branch.when, variables):
                    return index
            except TemplateError as exc:
                self._fail(row, path, fingerprint, f"branch {branch.name or index} `when`: {exc}", permanent=True,
                           attempt=1)
        return None

    def _restore(self, step: Any, path: str, record: StepRecord, variables: dict[str, Any],
                 records: dict[str, StepRecord], row: ItemRow) -> None:
        """Put a finished step's output back in the context; for route and map, continue inside them."""
        if record.state == "skipped" or record.output is None:
            self._set(step, None, variables)
            return
        if isinstance(step, RouteStep):
            branch = step.route[record.output["index"]]
            self._set(step, record.output, variables)
            self._run_steps(branch.steps, path + ".", variables, records, row)
        elif isinstance(step, MapStep):
            results = []
            for i, element in enumerate(record.output["elements"]):
                inner = {**variables, step.as_: element, "index": i, "steps": dict(variables["steps"])}
                self._run_steps(step.steps, f"{path}[{i}].", inner, records, row)
                results.append({s.step_id: inner["steps"].get(s.step_id) for s in step.steps})
            self._set(step, results, variables)
        else:
            self._set(step, record.output, variables)

    @staticmethod
    def _set(step: Any, output: Any, variables: dict[str, Any]) -> None:
        variables[step.step_id] = output
        variables["steps"][step.step_id] = output
        if step.kind == "set" and isinstance(output, dict):
            variables["item"] = {**variables["item"], **output}

    def _attempt(self, step: Any, path: str, fingerprint: str, record: StepRecord | None,
                 variables: dict[str, Any], row: ItemRow) -> Any:
        policy = step.retry or self.workflow.retry
        if record is not None and record.state == "running" and record.spec_hash == fingerprint \
                and record.attempts >= policy.attempts:
            self._fail(row, path, fingerprint, f"interrupted {record.attempts} time(s) while running (the process "
                       "died during this step); `plait workflows retry` runs it again", permanent=True,
                       attempt=record.attempts, started=False)
        with self._limit(step.step_id):
            attempt = self.state.step_started(row.id, path, fingerprint)
            ctx = StepContext(workflow=self.workflow, runtime=self.runtime, templates=self.templates,
                              clock=self.clock, item_key=row.key, step_path=path, variables=variables,
                              output_dir=self.output_dir, dry_run=self.dry_run, http_client=self.http)
            try:
                if isinstance(step, SinkStep):
                    return self._sink(step, path, fingerprint, ctx, row)
                output = self._compute(step, ctx)
            except (_StepFailed, _Stopped):
                raise
            except Exception as exc:  # noqa: BLE001 - any step error is recorded on the item, never lost
                if is_disk_failure(exc):
                    # A full or read-only disk fails every item alike: stop the run with one clear error. The
                    # item stays running and goes back to pending when the workflow next starts.
                    raise (store_error(exc, self.runtime.store.path) or StoreError(str(exc))) from exc
                message = str(exc) if isinstance(exc, PlaitError) else f"{type(exc).__name__}: {exc}"
                self._fail(row, path, fingerprint, message, permanent=isinstance(exc, PERMANENT), attempt=attempt,
                           policy=policy, started=True)
            self.state.step_done(row.id, path, fingerprint, output)
            return output

    def _compute(self, step: Any, ctx: StepContext) -> Any:
        kind = step.kind
        if kind == "task":
            return run_task(step, ctx, self.tasks)
        if kind == "template":
            return run_template(step, ctx)
        if kind == "set":
            return run_set(step, ctx)
        if kind == "http":
            return run_http(step, ctx)
        raise StepError(f"step kind '{kind}' cannot run here")  # pragma: no cover - the spec has no others

    def _sink(self, step: SinkStep, path: str, fingerprint: str, ctx: StepContext, row: ItemRow) -> Any:
        done = self.durable.effect(row.key, path)
        if done is not None:  # the effect happened in an earlier run; only the step's record was lost
            self.state.step_done(row.id, path, fingerprint, done.detail)
            return done.detail
        sink = self.sinks[step.step_id]
        if self.dry_run:
            preview = {"dry_run": True, "sink": step.sink, **to_jsonable(sink.describe(ctx))}
            self.state.step_done(row.id, path, fingerprint, preview)
            return preview
        detail = to_jsonable(sink.apply(ctx))
        self.state.step_done(row.id, path, fingerprint, detail, effect=(row.key, step.sink, detail, self._run_id),
                             durable=sink.external)
        with self._touched_lock:
            self._touched.add(step.step_id)
        return detail

    def _fail(self, row: ItemRow, path: str, fingerprint: str, message: str, *, permanent: bool, attempt: int,
              policy: Any = None, started: bool = False) -> None:
        if not started:
            self.state.step_started(row.id, path, fingerprint)
        self.state.step_failed(row.id, path, message)
        policy = policy or self.workflow.retry
        retry_at = None if permanent or attempt >= policy.attempts else self.clock.now() + policy.delay(attempt)
        suffix = "" if retry_at is None and permanent else f" (try {attempt} of {policy.attempts})"
        raise _StepFailed(f"step '{path}': {message}{suffix}", retry_at)

    @contextmanager
    def _limit(self, step_id: str) -> Iterator[None]:
        sem = self._limits.get(step_id)
        with sem if sem is not None else nullcontext():
            yield

    def _flush_sinks(self) -> None:
        if self.dry_run:
            return
        with self._touched_lock:
            touched, self._touched = self._touched, set()
        for step_id, sink in self.sinks.items():
            try:
                sink.flush(force=step_id in touched)
            except Exception as exc:  # noqa: BLE001 - a report that cannot be drawn does not stop the workflow
                message = str(exc) if isinstance(exc, PlaitError) else f"{type(exc).__name__}: {exc}"
                self._emit(EngineEvent("flush_error", message=f"sink '{step_id}': {message}"))
                log.warning("workflow %s: sink %s could not write its files: %s", self.workflow.name, step_id,
                            message)

    # -- helpers --------------------------------------------------------------------------------

    def _policy(self) -> Any:
        from plait.security.ssrf import policy_from

        return policy_from(self.workflow.network.allow, self.workflow.network.redirects)

    def http(self) -> httpx.Client:

        from plait.security.ssrf import guarded_client

        with self._http_lock:
            if self._http is None:
                # Every request (and redirect) checked: no loopback, link-local or private address unless the
                # workflow's `network.allow` names it; redirects only as many as `network.redirects`.
                self._http = guarded_client(self._policy(), self._transport, headers={"User-Agent": "plait-workflows"})
            return self._http

    def _ray_tasks(self) -> TaskExecutor:
        from plait.distributed.cluster import import_ray
        from plait.distributed.ray_tasks import RayTasks, workflow_models

        import_ray()  # a missing extra is said now, not after the trigger was read
        return RayTasks(self.runtime, models=workflow_models(self.workflow, self.runtime))

    def _output_dir(self) -> Path:
        return output_folder(self.workflow, self.runtime.settings.home)

    def _emit(self, event: EngineEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # noqa: BLE001 - a broken progress display must not break the run
                log.exception("workflow event handler failed")
