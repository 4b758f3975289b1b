"""Helpers for workflow tests: workflows from YAML text, test tasks declared in the task registry as a
plugin declares its own, and reading a workflow's state back."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from plait.runtime import Runtime
from plait.tasks.registry import Task, TaskRequest, registry
from plait.workflows.loader import parse_workflow
from plait.workflows.spec import Workflow
from plait.workflows.state import WorkflowState

CALLS: dict[str, int] = {}
_lock = threading.Lock()


def count(text: str, name: str = "count") -> dict[str, Any]:
    """A task that counts its calls per text (to prove a step is not run twice)."""
    with _lock:
        CALLS[f"{name}:{text}"] = CALLS.get(f"{name}:{text}", 0) + 1
    return {"text": text, "words": len(text.split())}


def explode(text: str) -> str:
    """A task that raises for texts containing 'boom' (a step that fails for some items)."""
    if "boom" in text:
        raise ValueError(f"cannot handle {text!r}")
    return text.upper()


FLAKY: dict[str, int] = {}


def flaky(text: str, failures: int = 1) -> str:
    """Fails the first ``failures`` calls for a text, then succeeds (a transient error)."""
    with _lock:
        FLAKY[text] = FLAKY.get(text, 0) + 1
        n = FLAKY[text]
    if n <= failures:
        raise ConnectionError(f"temporary failure #{n}")
    return f"ok after {n}"


class Crash(BaseException):
    """Stands for the process dying (not an Exception: the engine must not record it as a step error)."""


CRASH_AT: dict[str, int] = {"after": -1}


def crash(text: str) -> str:
    """Counts calls; raises Crash on call number CRASH_AT['after'] (0-based), like a kill mid-run."""
    with _lock:
        n = CALLS.get("crash", 0)
        CALLS["crash"] = n + 1
    if n == CRASH_AT["after"]:
        raise Crash()
    return text


class TextRequest(TaskRequest):
    text: str
    failures: int = 1


COUNT = Task(name="test_count", summary="counts its calls", request=TextRequest, result=dict[str, Any],
             run=lambda request, ctx: count(request.text))
EXPLODE = Task(name="test_explode", summary="fails for 'boom'", request=TextRequest, result=str,
               run=lambda request, ctx: explode(request.text))
FLAKY_TASK = Task(name="test_flaky", summary="fails, then works", request=TextRequest, result=str,
                  run=lambda request, ctx: flaky(request.text, request.failures))
CRASH = Task(name="test_crash", summary="dies on a given call", request=TextRequest, result=str,
             run=lambda request, ctx: crash(request.text))

for _name, _target in (("test_count", "COUNT"), ("test_explode", "EXPLODE"), ("test_flaky", "FLAKY_TASK"),
                       ("test_crash", "CRASH")):
    if _name not in registry().names():
        registry().declare(_name, f"tests.workflow_helpers:{_target}", by="plait's tests")


def workflow(tmp_path: Path, text: str, name: str = "wf.yml") -> Workflow:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return parse_workflow(text, file=str(path), source=path)


def state(runtime: Runtime, name: str) -> WorkflowState:
    return WorkflowState(runtime.store, name)


def reset() -> None:
    CALLS.clear()
    FLAKY.clear()
    CRASH_AT["after"] = -1
