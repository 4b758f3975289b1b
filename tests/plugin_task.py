"""A task as a third-party package declares it (entry point group ``plait.tasks``), for the registry's tests."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from plait.tasks.registry import Task, TaskContext, TaskRequest


class ShoutRequest(TaskRequest):
    text: str = Field(min_length=1, max_length=1000)


@dataclass(frozen=True)
class Shouted:
    text: str


def _run(request: ShoutRequest, ctx: TaskContext) -> Shouted:
    return Shouted(request.text.upper())


TASK = Task(name="shout", summary="Say a text louder", request=ShoutRequest, result=Shouted, run=_run)
