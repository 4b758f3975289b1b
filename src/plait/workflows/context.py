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
from plait.workflows.errors import TemplateError
from plait.workflows.templates import is_template

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


# Template variables only the workflow's author sets: a path rendered from these alone is the author's.
AUTHOR_VARIABLES = ("vars", "workflow", "now")
# Trigger options naming the folder or file items come from (the only places an item's path may point).
TRIGGER_PATH_OPTIONS = {"folder": "path", "maildir": "path", "mbox": "path"}


def trigger_folders(workflow: Workflow) -> list[Path]:
    option = TRIGGER_PATH_OPTIONS.get(workflow.trigger.type)
    value = workflow.trigger.options.get(option) if option else None
    return [resolve_path(str(value), workflow.base_dir)] if value else []


def literal_folder(source: str) -> Path | None:
    """The folder the author's text names before its first template tag ('/srv/out/' of '/srv/out/{{ x }}.md')."""
    cut = min((i for i in (source.find("{{"), source.find("{%"), source.find("{#")) if i >= 0), default=len(source))
    prefix = source[:cut]
    return Path(prefix[:prefix.rfind("/") + 1]) if "/" in prefix else None


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

    def author_only(self, source: str) -> str | None:
        """``source`` rendered from the author's own values alone (vars, env(), the workflow, now), or None when
        it needs the item's data: what decides whether the author or the data chose a path."""
        if not is_template(source):
            return source
        context = {k: self.variables[k] for k in AUTHOR_VARIABLES if k in self.variables}
        try:
            return self.templates.render_text(source, context)
        except TemplateError:
            return None

    def output_path(self, value: str | Path) -> Path:
        """Where a sink writes: the author's template, with ``${VAR}`` and ``~`` expanded in the author's text
        before rendering (a value from an item is never expanded). A path the author wrote (no item data in
        it) may be absolute; one rendered from item data stays inside the folder the author's literal text
        names, the workflow's output folder unless it starts with an absolute folder, never outside by '..'."""
        if not isinstance(value, str):
            return self._inside(self.output_dir, self.output_dir / value, str(value))
        source = expand(value)
        fixed = self.author_only(source)
        if fixed is not None:
            if not fixed.strip():
                raise InputError(f"step '{self.step_path}': the path '{value}' is empty")
            path = Path(fixed)
            return path if path.is_absolute() else self._inside(self.output_dir, self.output_dir / path, value)
        rendered = self.render_text(source)
        if not rendered.strip():
            raise InputError(f"step '{self.step_path}': the path template gave an empty path")
        anchor = literal_folder(source)
        if anchor is not None and anchor.is_absolute():
            return self._inside(anchor, Path(rendered), value)
        if Path(rendered).is_absolute():
            raise InputError(f"step '{self.step_path}': the path '{value}' became the absolute path '{rendered}' "
                             "from the item's data; write the folder in the workflow (e.g. ~/Notes/{{ … }})")
        return self._inside(self.output_dir, self.output_dir / rendered, value)

    def _inside(self, root: Path, path: Path, written: str) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(root.resolve()):
            where = "the output folder" if root == self.output_dir else "the folder"
            raise InputError(f"step '{self.step_path}': the path '{written}' leaves {where} {root}; give an "
                             "absolute path to write elsewhere")
        return resolved

    def input_path(self, value: str | Path, within: tuple[str, ...] = ()) -> Path:
        """A file a sink acts on (moves, copies, tags). A path the author wrote may be anywhere; one taken from
        an item must lie in the trigger's own folders, the workflow's output folder, or a folder the author
        listed in the sink's ``within``: an item cannot make plait move the owner's other files."""
        if not isinstance(value, str):
            return Path(value)
        source = expand(value)
        fixed = self.author_only(source)
        if fixed is not None:
            return resolve_path(fixed, self.workflow.base_dir)
        rendered = self.render_text(source)
        path = Path(rendered) if Path(rendered).is_absolute() else self.workflow.base_dir / rendered
        resolved = path.resolve()
        roots = [*trigger_folders(self.workflow), self.output_dir,
                 *(resolve_path(w, self.workflow.base_dir) for w in within)]
        if not any(resolved.is_relative_to(root.resolve()) for root in roots):
            raise InputError(f"step '{self.step_path}': '{rendered}' (from '{value}') is outside the trigger's folders "
                             "and the output folder; list its folder in the step's `within` to allow it")
        return resolved

    def http(self) -> httpx.Client:
        if self.http_client is None:
            raise RuntimeError("no HTTP client configured")  # the engine always provides one
        return self.http_client()
