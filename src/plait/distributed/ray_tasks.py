"""A workflow's task steps run by Ray actors: ``executor: ray`` in the workflow, or ``plait run --executor ray``.

The engine stays in the plait process: it reads the trigger, keeps every item's ledger in SQLite, renders
each step's arguments from the item and earlier outputs, and runs sinks exactly once. Only the model work
of a ``task:`` step travels: its checked request goes to the least busy actor, which runs the task on its
own runtime (models loaded once per actor, from a :class:`~plait.distributed.shipping.Shipment`) and
returns the task's JSON, which the engine records like a local result. Tasks over the person's index
(``search``, ``ask``) and workflow functions (``read``: a file of this machine) run here.

A worker killed mid-task: its calls are sent again to a fresh actor (:mod:`plait.distributed.pool`), so
the step finishes once. A killed engine: the ledger resumes the run as it does locally.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from plait.distributed.cluster import connect
from plait.distributed.pool import Worker, WorkerPool, room

if TYPE_CHECKING:
    from plait.readers.document import Document
    from plait.runtime import Runtime
    from plait.tasks.registry import Task, TaskRequest
    from plait.workflows.spec import Workflow

LOCAL_SCOPES = ("index", "admin")  # tasks over the person's own data or settings stay on their machine


class TaskWorker(Worker):
    """A Ray actor running plait tasks on its own runtime (its model pool keeps models loaded)."""

    def run(self, task_name: str, target: tuple[str, str], request: TaskRequest, document: Document | None = None,
            ) -> Any:
        from plait.errors import InputError
        from plait.tasks.registry import TaskContext, registry

        try:
            registry().target(task_name)
        except InputError:  # a task a plugin or a program declared in the plait process only
            registry().declare(task_name, target[0], by=target[1])
        task = registry().get(task_name)
        return task.to_json(task.run(request, TaskContext(self.runtime, document=document)))


class RayTasks:
    """Runs task steps on a pool of :class:`TaskWorker` actors; callable from the engine's threads.

    ``models``: the models whose files the workers get (the workflow's named models and the default chat
    and embedding models); each loads on a worker when a task first asks for it.
    """

    def __init__(self, runtime: Runtime, *, address: str | None = None, workers: int | None = None,
                 worker_cpus: float | None = None, models: Iterable[str] = ()) -> None:
        self.runtime, self.address = runtime, address
        self.workers, self.worker_cpus = workers, worker_cpus
        self.models = tuple(dict.fromkeys(models))
        self.pool: WorkerPool | None = None
        self._lock = threading.Lock()

    def start(self) -> WorkerPool:
        """Connect and start the actors (once; the engine's threads may all ask at the same moment)."""
        from plait.distributed.shipping import ship

        with self._lock:
            if self.pool is None:
                ray = connect(self.address)
                cpus = self.worker_cpus or self.runtime.settings.threads
                count = room(cpus, self.workers)
                shipment = ray.put(ship(self.runtime, self.models))
                pool = WorkerPool(ray, TaskWorker, (shipment,), count=count, cpus=cpus)
                pool.check_versions(pool.start(f"starting {count} task worker(s)"))
                self.pool = pool
            return self.pool

    @property
    def parallelism(self) -> int:
        """Items worth running at once: two per actor, so none idles while the engine records a result."""
        return 2 * len(self.start().actors)

    def __call__(self, task: Task, request: TaskRequest, document: Document | None = None) -> Any:
        """The task's JSON; ``document``: the mail or file the input came from, for tasks that read its
        structure (it travels with the request)."""
        if task.scope in LOCAL_SCOPES:
            from plait.tasks.registry import TaskContext

            return task.to_json(task.run(request, TaskContext(self.runtime, document=document)))
        from plait.tasks.registry import registry

        target = registry().target(task.name)
        return self.start().call("run", task.name, target, request, document, what=f"task '{task.name}'").result()

    def close(self) -> None:
        with self._lock:
            if self.pool is not None:
                self.pool.close()
                self.pool = None


def workflow_models(workflow: Workflow, runtime: Runtime) -> list[str]:
    """The catalog names a workflow's task steps name (``model:``, or a literal value of ``with`` that is a
    model's name), and the default chat and embedding models."""
    from plait.workflows.spec import TaskStep, walk_steps

    known = set(runtime.catalog.names())
    names = [runtime.settings.embed_model, runtime.settings.chat_model]
    for _, step in walk_steps(workflow.steps):
        if isinstance(step, TaskStep):
            values = [step.model, *step.with_.values()]
            names.extend(v for v in values if isinstance(v, str) and v in known)
    return list(dict.fromkeys(names))
