"""Long work the server runs for a request in the background (indexing a folder), with progress to poll.

A job runs in a thread of its own; ``GET`` on its route reads its progress and, once it is over, its
result or its error. Jobs of one kind run one at a time (two ingestions of one index would only wait for
each other's lock), and the most recent jobs are kept for a while for the page to read.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from plait.errors import PlaitError

KEPT = 50  # finished jobs remembered
log = logging.getLogger("plait.serve")

Progress = Callable[[dict[str, Any]], None]


@dataclass
class Job:
    id: str
    kind: str
    title: str
    started_at: float
    progress: dict[str, Any] = field(default_factory=dict)
    state: str = "queued"  # queued | running | done | failed
    result: Any = None
    error: str | None = None
    finished_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Jobs:
    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._kinds: dict[str, threading.Lock] = {}

    def start(self, kind: str, title: str, work: Callable[[Progress], Any]) -> Job:
        """Run ``work(progress)`` in the background; it reports progress as a dict and returns JSON data."""
        job = Job(secrets.token_hex(6), kind, title, time.time())
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT and next(iter(self._jobs.values())).finished_at is not None:
                self._jobs.popitem(last=False)
            turn = self._kinds.setdefault(kind, threading.Lock())

        def run() -> None:
            with turn:
                job.state = "running"
                try:
                    job.result = work(lambda update: job.progress.update(update))
                    job.state = "done"
                except PlaitError as exc:
                    job.state, job.error = "failed", str(exc)
                except Exception as exc:  # noqa: BLE001 - reported on the job, never lost in a thread
                    # The job says only the kind of error (it is shown to the page); the log has the traceback.
                    log.exception("job %s (%s) failed", job.id, job.kind)
                    job.state, job.error = "failed", f"unexpected error: {type(exc).__name__}"
                finally:
                    job.finished_at = time.time()

        threading.Thread(target=run, name=f"plait-job-{kind}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, kind: str | None = None) -> list[Job]:
        with self._lock:
            return [j for j in reversed(self._jobs.values()) if kind is None or j.kind == kind]
