"""A fixed set of Ray actors of one class, each loading plait's models once, fed the least busy first.

An actor whose process dies (killed, out of memory, its node lost) is replaced by a fresh one and the
calls it held are sent again, up to ``RETRIES`` times per call. The pool does this rather than Ray's own
``max_restarts``: it then knows each replacement (its process id, how many there were) and a restart never
depends on Ray keeping the actors' constructor arguments alive.

Calls must be safe to repeat: they compute (embed texts, run a task on a request) and write nothing; what
they return is written by the plait process that owns the person's data, once.
"""

from __future__ import annotations

import atexit
import os
import shutil
import threading
from typing import TYPE_CHECKING, Any

from plait.distributed.cluster import cluster_cpus, failure
from plait.errors import ClusterError

if TYPE_CHECKING:
    from plait.distributed.shipping import Shipment

RETRIES = 4  # sends of one call to a fresh actor after its actor died
START_SECONDS = 600.0  # loading models on every worker (a cluster may first have to add nodes)


class Worker:
    """Base of plait's Ray actors: an ordinary plait runtime of its own, made from a shipment, in a home
    folder removed when the process ends (or, if it was killed, by the next worker on that machine)."""

    def __init__(self, shipment: Shipment) -> None:
        from plait.distributed.shipping import worker_home, worker_runtime

        self.home = worker_home()
        atexit.register(shutil.rmtree, self.home, True)
        self.runtime = worker_runtime(shipment, self.home)

    def info(self) -> dict[str, Any]:
        from plait import __version__

        return {"version": __version__, "pid": os.getpid()}


def room(cpus: float, wanted: int | None) -> int:
    """How many actors of ``cpus`` CPUs to start: ``wanted``, or as many as the cluster has room for."""
    total = cluster_cpus()
    fits = int(total // cpus)
    if fits < 1:
        raise ClusterError(f"each Ray worker asks for {cpus:g} CPUs, more than the cluster has ({total}); "
                           "lower --worker-cpus")
    if wanted is not None and wanted > fits:
        raise ClusterError(f"the Ray cluster has room for {fits} worker(s) of {cpus:g} CPUs, not {wanted}; "
                           "ask for fewer --workers or fewer --worker-cpus")
    return wanted or fits


class Call:
    """One method call on the pool; :meth:`result` waits, and sends it again if its actor died."""

    def __init__(self, pool: WorkerPool, method: str, args: tuple[Any, ...], what: str) -> None:
        self.pool, self.method, self.args, self.what = pool, method, args, what
        self.attempts = 0
        self.slot, self.actor, self.ref = pool.send(method, args)

    def result(self) -> Any:
        ray = self.pool.ray
        try:
            while True:
                try:
                    return ray.get(self.ref)
                except ray.exceptions.RayActorError as exc:
                    self.attempts += 1
                    if self.attempts > RETRIES:
                        raise failure(exc, f"{self.what} ({self.attempts} workers died)") from exc
                    self.pool.replace(self.slot, self.actor)
                    self.slot, self.actor, self.ref = self.pool.send(self.method, self.args, done=self.slot)
                except Exception as exc:  # noqa: BLE001 - Ray's errors become plait's at this boundary
                    raise failure(exc, self.what) from exc
        finally:
            self.pool.finished(self.slot)


class WorkerPool:
    def __init__(self, ray: Any, actor_class: type, args: tuple[Any, ...], *, count: int, cpus: float) -> None:
        self.ray = ray
        self._remote = ray.remote(num_cpus=cpus)(actor_class)
        self._args = args  # object references among them stay alive with the pool: replacements need them
        self.actors = [self._remote.remote(*args) for _ in range(count)]
        self.busy = [0] * count
        self.pids: list[int] = []
        self.replaced = 0
        self._lock = threading.Lock()

    def start(self, what: str) -> list[dict[str, Any]]:
        """Wait until every actor has loaded its models; their ``info()`` (which must give ``pid``)."""
        infos = self._infos(self.actors, what)
        self.pids = [int(i["pid"]) for i in infos]
        return infos

    def _infos(self, actors: list[Any], what: str) -> list[dict[str, Any]]:
        try:
            infos: list[dict[str, Any]] = self.ray.get([a.info.remote() for a in actors], timeout=START_SECONDS)
        except Exception as exc:  # noqa: BLE001
            self.close()
            raise failure(exc, what) from exc
        return infos

    def check_versions(self, infos: list[dict[str, Any]]) -> None:
        """Workers must run the plait this machine runs: the same code makes the same chunks' vectors and
        the same task results."""
        from plait import __version__

        versions = {str(i.get("version")) for i in infos}
        if versions != {__version__}:
            self.close()
            raise ClusterError(f"the Ray workers run plait {', '.join(sorted(versions))} and this machine "
                               f"{__version__}; install the same version on the cluster")

    def call(self, method: str, *args: Any, what: str) -> Call:
        return Call(self, method, args, what)

    def send(self, method: str, args: tuple[Any, ...], done: int | None = None) -> tuple[int, Any, Any]:
        """Send to the least busy actor: (slot, actor, object reference). ``done``: a slot this call leaves."""
        with self._lock:
            if done is not None:
                self.busy[done] -= 1
            slot = min(range(len(self.actors)), key=self.busy.__getitem__)
            self.busy[slot] += 1
            actor = self.actors[slot]
        return slot, actor, getattr(actor, method).remote(*args)

    def finished(self, slot: int) -> None:
        with self._lock:
            self.busy[slot] -= 1

    def replace(self, slot: int, dead: Any) -> None:
        """Start a new actor in ``slot`` unless another call already replaced the dead one."""
        with self._lock:
            if self.actors[slot] is not dead:
                return
            fresh = self.actors[slot] = self._remote.remote(*self._args)
            self.replaced += 1
        self.pids[slot] = int(self._infos([fresh], "starting a worker again")[0]["pid"])

    def close(self) -> None:
        """Stop the actors now (they would otherwise live until this process exits)."""
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors, self._args = [], ()
