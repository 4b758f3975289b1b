"""Helpers shared by the benchmarks: timing, memory, machine facts and writing results."""

from __future__ import annotations

import json
import os
import platform
import resource
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from plait.compress.measure import percentile  # noqa: F401 - one definition, shared with plait compress

RESULTS = Path(__file__).resolve().parent / "results"
# Benchmarks make fresh homes, which plait encrypts by default: a random key for this run (no keyring needed).
os.environ.setdefault("PLAIT_KEY", secrets.token_hex(32))
# The real corpora the benchmarks run on are plait's test data (tests/corpora.py), not part of plait.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
T = TypeVar("T")


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def make_home(base: Path, name: str) -> Path:
    """A fresh plait home sharing the user's built models (minilm-q8 is built once, not per run)."""
    from plait.settings import load_settings

    home = base / name
    home.mkdir(parents=True)
    models = load_settings().models_dir
    models.mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(models)
    return home


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_results(name: str, results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **results}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(json.dumps(payload, indent=2))
    print(f"written to {path}", file=sys.stderr)
    return path
