"""Time for workflows, behind a small interface so tests can control it.

The engine, the retry backoff and the schedule trigger ask a :class:`Clock` for the time and wait on it;
:class:`ManualClock` lets a test set the time and jump it forward, waking whoever waits.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class Clock:
    """Real time: ``now()`` is Unix seconds; ``sleep`` returns early when ``stop`` is set."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        if seconds <= 0:
            return
        if stop is None:
            time.sleep(seconds)
        else:
            stop.wait(seconds)

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)


class ManualClock(Clock):
    """A clock that moves only when told to (``set``/``advance``); sleepers wake when their time comes.

    A sleeper also wakes after ``real_timeout`` real seconds, so a test that forgets to advance the clock
    fails instead of hanging.
    """

    def __init__(self, start: float | datetime, *, real_timeout: float = 30.0) -> None:
        self._now = start.timestamp() if isinstance(start, datetime) else float(start)
        self._changed = threading.Condition()
        self.real_timeout = real_timeout
        self.sleepers = 0

    def now(self) -> float:
        with self._changed:
            return self._now

    def set(self, when: float | datetime) -> None:
        with self._changed:
            self._now = when.timestamp() if isinstance(when, datetime) else float(when)
            self._changed.notify_all()

    def advance(self, seconds: float) -> None:
        with self._changed:
            self._now += seconds
            self._changed.notify_all()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        deadline_real = time.monotonic() + self.real_timeout
        with self._changed:
            until = self._now + seconds
            self.sleepers += 1
            try:
                while self._now < until and not (stop is not None and stop.is_set()):
                    left = deadline_real - time.monotonic()
                    if left <= 0:
                        return
                    # Short waits so a stop event set without notifying this condition is still seen.
                    self._changed.wait(min(left, 0.05))
            finally:
                self.sleepers -= 1
