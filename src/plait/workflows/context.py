"""What a step or sink sees while it runs for one item: the runtime, templates, the item's context and
where its files go. One :class:`StepContext` per (item, step) call, built by the engine."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import InputError

if TYPE_CHECKING:
    import httpx

    from plait.runtime import Runtime
    from plait.store import Store
    from plait.workflows.clock import Clock
    from plait.workflows.spec import Workflow
    from plait.workflows.templates import Templates

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand(value: str) -> str:
    """``${NAME}`` and ``${NAME:-default}`` from the environment, then ``~``: so a bundled workflow reads
    ``path: ${PLAIT_MAILDIR:-~/Mail/INBOX}`` and a person can point it elsewhere without editing it."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise InputError(f"'{value}' uses ${{{name}}}, which is not set; set it or write ${{{name}:-default}}")

    return os.path.expanduser(_VAR.sub(sub, value))


def resolve_path(value: str | Path, base: Path) -> Path:
    path = Path(expand(str(value)))
    return path if path.is_absolute() else base / path


@dataclass
class StepContext:
    workflow: Workflow
    runtime: Runtime
    templates: Templates
    clock: Clock
    item_key: str
    step_path: str
    variables: dict[str, Any]  # the template context: item, vars, earlier outputs…
    output_dir: Path
    dry_run: bool = False
    http_client: Callable[[], httpx.Client] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def store(self) -> Store:
        return self.runtime.store

    def render(self, value: Any) -> Any:
        return self.templates.render(value, self.variables)

    def render_text(self, value: Any) -> str:
        return self.templates.render_text(value, self.variables)

    def evaluate(self, expression: str) -> Any:
        return self.templates.evaluate(expression, self.variables)

    def output_path(self, value: str | Path) -> Path:
        """A rendered path: absolute, or relative to the workflow's output folder; never outside it by '..'."""
        rendered = self.render_text(str(value)) if isinstance(value, str) else str(value)
        if not rendered.strip():
            raise InputError(f"step '{self.step_path}': the path template gave an empty path")
        path = Path(expand(rendered))
        if path.is_absolute():
            return path
        resolved = (self.output_dir / path).resolve()
        if not resolved.is_relative_to(self.output_dir.resolve()):
            raise InputError(f"step '{self.step_path}': the path '{rendered}' leaves the output folder "
                             f"{self.output_dir}; give an absolute path to write elsewhere")
        return resolved

    def input_path(self, value: str | Path) -> Path:
        rendered = self.render_text(str(value)) if isinstance(value, str) else str(value)
        return resolve_path(rendered, self.workflow.base_dir)

    def http(self) -> httpx.Client:
        if self.http_client is None:
            raise RuntimeError("no HTTP client configured")  # the engine always provides one
        return self.http_client()
