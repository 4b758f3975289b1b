"""The server's response cache: bounded in entries, bytes and time.

Keys are digests of everything an answer depends on: the route, the model's name and version (a changed
catalog entry means a new key), the parameters and the input. Values are encoded response bodies, so a hit
costs a dictionary lookup and no model. What may be cached is the caller's decision; generation is
cached only when it is deterministic (temperature 0, or a fixed seed), see :func:`generation_is_cacheable`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plait.models.base import GenerationOptions
from plait.models.spec import ModelSpec


def model_version(spec: ModelSpec) -> str:
    """Changes whenever the catalog entry does (re-registered, rebuilt, new version)."""
    digest = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:12]
    return f"{spec.name}@{spec.version}:{digest}"


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def generation_is_cacheable(options: GenerationOptions) -> bool:
    """Sampled output is only repeatable with a fixed seed; greedy decoding always is."""
    return options.temperature == 0 or options.seed is not None


@dataclass
class _Entry:
    value: bytes
    expires: float


class ResponseCache:
    def __init__(self, max_entries: int, ttl_seconds: float, *, max_bytes: int = 64 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries, self.ttl, self.max_bytes, self.clock = max_entries, ttl_seconds, max_bytes, clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_entries > 0 and self.ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        if not self.enabled:
            return None
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= now:
                if entry is not None:
                    self._drop(key)
                return None
            self._entries.move_to_end(key)
            return entry.value

    def put(self, key: str, value: bytes) -> None:
        if not self.enabled or len(value) > self.max_bytes // 4:
            return  # one huge answer must not flush everything else
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(value, self.clock() + self.ttl)
            self._bytes += len(value)
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= len(entry.value)
