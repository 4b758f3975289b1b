"""The errors of workflows, all :class:`~plait.errors.PlaitError` subclasses so the CLI and server show them
as one line.

    InputError
    ├── SpecError          a workflow file is invalid (lists every problem with its file, line and field)
    └── TemplateError      a Jinja2 template or expression cannot be compiled or rendered for an item
    PlaitError
    ├── StepError          a step failed for an item (permanent: retrying will not help)
    ├── TriggerError       a trigger's source cannot be read (folder gone, server down, feed 404)
    └── WorkflowBusy       another process is running the workflow
"""

from __future__ import annotations

from dataclasses import dataclass

from plait.errors import InputError, PlaitError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a workflow file, where it is and what to do."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class SpecError(InputError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more problem(s); `plait workflows validate FILE` lists them)" \
            if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


class TemplateError(InputError):
    pass


class StepError(PlaitError):
    pass


class TriggerError(PlaitError):
    exit_code = 7


class WorkflowBusy(PlaitError):
    exit_code = 8
