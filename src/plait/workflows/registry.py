"""A registry of one kind of workflow plugin (triggers, sinks): names and the class that implements each.

Built-ins register exactly like extensions, as ``"package.module:Class"`` targets, and a class's module is
imported only when a workflow uses it, so an unused plugin's dependencies never load.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, str], Generic[T]):
    """Name → ``"package.module:Class"``; a mapping, so ``sorted(registry)`` lists the names."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind  # "sink", "trigger": names the plugin in errors

    def register(self, name: str, target: str) -> None:
        if name in self:
            raise ValueError(f"a workflow {self.kind} '{name}' is registered twice")
        self[name] = target

    def load(self, name: str) -> type[T] | None:
        """The class registered as ``name``, its module imported now; None when the name is unknown.

        Callers word the unknown-name error themselves, since it is what a user with a typo reads.
        """
        target = self.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        cls: type[T] = getattr(importlib.import_module(module), attr)
        return cls
