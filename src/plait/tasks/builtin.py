"""plait's own tasks, declared exactly as a plugin declares its tasks (see :mod:`plait.tasks.registry`).

Each line names a task and the :class:`~plait.tasks.registry.Task` that defines it in the task's own module;
the module is imported only when the task is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plait.tasks.registry import Registry

BUILTIN = {
    "generate": "plait.tasks.generate:GENERATE",
    "chat": "plait.tasks.generate:CHAT",
    "embed": "plait.tasks.embed:TASK",
    "summarize": "plait.tasks.summarize:TASK",
    "classify": "plait.tasks.classify:TASK",
    "extract": "plait.tasks.extract:TASK",
    "sentiment": "plait.tasks.sentiment:TASK",
    "plan": "plait.tasks.plan:TASK",
    "search": "plait.tasks.search:TASK",
    "ask": "plait.tasks.ask:TASK",
    "recommend": "plait.tasks.recommend:TASK",
    "relevance": "plait.tasks.relevance:TASK",
    "see": "plait.tasks.see:TASK",
    "hear": "plait.tasks.hear:TASK",
    "speak": "plait.tasks.speak:TASK",
    "explain": "plait.tasks.explain:TASK",
    "redact": "plait.tasks.redact:TASK",
}


def declare_builtin(registry: Registry) -> None:
    for name, target in BUILTIN.items():
        registry.declare(name, target)
