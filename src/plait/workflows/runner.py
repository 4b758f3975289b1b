"""Running the enabled workflows in the background, each on its trigger: what ``plait up`` starts.

    from plait.workflows import runner
    handle = runner.start(runtime)          # $PLAIT_HOME/workflows/*.yml, one thread each
    handle.status()                         # per workflow: counts, live run, errors
    handle.submit("inbox-triage", {...})    # a manual item (the server's /run route)
    handle.stop()                           # stops after the steps in progress; nothing is lost

Each workflow runs ``Engine.run(watch=True)`` in its own thread. If a run ends with an unexpected error,
it is logged and started again after a pause (doubling up to 10 minutes), so one broken workflow never
stops the others. A file that does not validate is skipped and reported by ``status()``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import InputError, PlaitError
from plait.workflows.clock import Clock
from plait.workflows.enabled import discover, workflows_folder
from plait.workflows.errors import WorkflowBusy
from plait.workflows.spec import Workflow
from plait.workflows.state import WorkflowState
from plait.workflows.status import WorkflowStatus, workflow_status

if TYPE_CHECKING:
    import httpx

    from plait.runtime import Runtime
    from plait.workflows.engine import Engine

log = logging.getLogger("plait.workflows")
RESTART_SECONDS = (5.0, 600.0)  # first pause after a crash, longest pause


@dataclass
class _Slot:
    workflow: Workflow
    path: Path | None
    thread: threading.Thread | None = None
    engine: Engine | None = None
    error: str | None = None
    wake: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)  # this workflow only (disabled)


class Runner:
    def __init__(self, runtime: Runtime, workflows: list[tuple[Workflow, Path | None]], *,
                 clock: Clock | None = None, http_transport: httpx.BaseTransport | None = None,
                 problems: dict[str, str] | None = None) -> None:
        self.runtime = runtime
        self.clock = clock or Clock()
        self._transport = http_transport
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.slots = {w.name: _Slot(w, p) for w, p in workflows}
        self.problems = dict(problems or {})  # file name → why it was not loaded

    def start(self) -> Runner:
        for slot in self.snapshot().values():
            self._start(slot)
        return self

    def snapshot(self) -> dict[str, _Slot]:
        """The workflows running now. A copy: enabling or disabling one (add, remove) changes ``slots``
        from another thread, and a dict must not change while it is iterated."""
        with self._lock:
            return dict(self.slots)

    def _start(self, slot: _Slot) -> None:
        if slot.workflow.enabled:
            slot.thread = threading.Thread(target=self._loop, args=(slot,), daemon=True,
                                           name=f"plait-workflow-{slot.workflow.name}")
            slot.thread.start()

    def add(self, workflow: Workflow, path: Path | None) -> None:
        """Run a workflow enabled while running (the web page's Enable), in place of one of that name."""
        self.remove(workflow.name)
        slot = _Slot(workflow, path)
        with self._lock:
            self.slots[workflow.name] = slot
        self._start(slot)

    def remove(self, name: str, timeout: float = 30.0) -> None:
        """Stop one workflow after its steps in progress (disabled while running); others go on."""
        with self._lock:
            slot = self.slots.pop(name, None)
            if slot is not None:
                slot.stop.set()
                if slot.engine is not None:
                    slot.engine.stop()
        if slot is not None and slot.thread is not None:
            slot.thread.join(timeout)

    def _loop(self, slot: _Slot) -> None:
        from plait.workflows.engine import Engine

        pause = RESTART_SECONDS[0]
        while not slot.stop.is_set():
            try:
                engine = Engine(slot.workflow, self.runtime, clock=self.clock, http_transport=self._transport)
            except PlaitError as exc:
                slot.error = str(exc)
                log.error("workflow %s cannot start: %s", slot.workflow.name, exc)
                return
            with self._lock:
                slot.engine = engine
                if slot.stop.is_set():
                    engine.stop()
            if slot.wake.is_set():
                slot.wake.clear()
                engine.wake()
            try:
                summary = engine.run(watch=True, kind="up")
                slot.error = summary.trigger_error
                if slot.stop.is_set():
                    return
            except WorkflowBusy as exc:
                slot.error = str(exc)  # another process runs it (e.g. `plait run --watch`): try again later
            except Exception as exc:  # noqa: BLE001 - one workflow's crash must not stop the others
                slot.error = f"{type(exc).__name__}: {exc}"
                log.exception("workflow %s stopped with an error; restarting in %.0fs", slot.workflow.name, pause)
            finally:
                with self._lock:
                    slot.engine = None
            slot.stop.wait(pause)
            pause = min(pause * 2, RESTART_SECONDS[1])

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every workflow after the steps in progress; items not finished stay pending for next time."""
        self._stop.set()
        with self._lock:
            slots = list(self.slots.values())
            for slot in slots:
                slot.stop.set()
                if slot.engine is not None:
                    slot.engine.stop()
        for slot in slots:
            if slot.thread is not None:
                slot.thread.join(timeout)

    def wake(self, name: str) -> None:
        slot = self._slot(name)
        with self._lock:
            if slot.engine is not None:
                slot.engine.wake()
            else:
                slot.wake.set()

    def submit(self, name: str, data: dict[str, Any], key: str | None = None) -> str:
        """Record a manual item for ``name`` and wake it; returns the item's key."""
        self._slot(name)
        key = WorkflowState(self.runtime.store, name, self.clock).submit(data, key)
        self.wake(name)
        return key

    def status(self) -> list[WorkflowStatus]:
        out = []
        for name, slot in self.snapshot().items():
            st = workflow_status(self.runtime.store, name)
            st.file = str(slot.path) if slot.path else None
            st.enabled = slot.workflow.enabled
            st.problem = slot.error
            st.extra["thread_alive"] = bool(slot.thread and slot.thread.is_alive())
            out.append(st)
        return out

    def _slot(self, name: str) -> _Slot:
        slot = self.slots.get(name)
        if slot is None:
            running = ", ".join(self.names) or "(none)"
            raise InputError(f"no workflow '{name}' is running here; running: {running}")
        return slot

    @property
    def names(self) -> list[str]:
        return sorted(self.snapshot())


def start(runtime: Runtime, folder: Path | None = None, *, clock: Clock | None = None,
          http_transport: httpx.BaseTransport | None = None) -> Runner:
    """Load the workflows in ``folder`` (default ``$PLAIT_HOME/workflows``) and run the enabled ones."""
    folder = folder or workflows_folder(runtime.settings.home)
    loaded: list[tuple[Workflow, Path | None]] = []
    problems: dict[str, str] = {}
    names: set[str] = set()
    for found in discover(folder):
        if found.workflow is None:
            problems[found.path.name] = str(found.error)
            log.error("workflow file %s is not valid: %s", found.path, found.error)
        elif found.workflow.name in names:
            problems[found.path.name] = f"another file already defines workflow '{found.workflow.name}'"
        else:
            names.add(found.workflow.name)
            loaded.append((found.workflow, found.path))
    return Runner(runtime, loaded, clock=clock, http_transport=http_transport, problems=problems).start()
