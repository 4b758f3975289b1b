"""Failed sign-in back-off: an address that keeps sending wrong keys is made to wait, longer each time.

After ``FREE`` failures from one client address within ``WINDOW`` seconds, each further failure doubles
the time that address must wait before its next attempt is even checked (1 s, 2 s, 4 s … up to ``CAP``);
until then its requests are answered 429 with ``Retry-After``. A success from the address clears its
record. In memory: it protects a running server, like the rate limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

FREE = 5
WINDOW = 300.0
CAP = 300.0


@dataclass
class _Record:
    failures: list[float] = field(default_factory=list)
    blocked_until: float = 0.0


class AuthBackoff:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """Seconds ``client`` must still wait before its key is checked (0.0: go ahead)."""
        with self._lock:
            record = self._records.get(client)
            return max(0.0, record.blocked_until - self.clock()) if record else 0.0

    def failed(self, client: str) -> float:
        """Record a failure; returns the wait it now imposes."""
        now = self.clock()
        with self._lock:
            record = self._records.setdefault(client, _Record())
            record.failures = [t for t in record.failures if now - t < WINDOW] + [now]
            extra = len(record.failures) - FREE
            if extra > 0:
                record.blocked_until = now + min(CAP, 2.0 ** (extra - 1))
            if len(self._records) > 10_000:  # many addresses: forget the quiet ones
                for other in [c for c, r in self._records.items() if r.blocked_until < now and c != client][:5000]:
                    del self._records[other]
            return max(0.0, record.blocked_until - now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._records.pop(client, None)
