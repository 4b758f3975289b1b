"""The workflow schema: what a YAML workflow file (or the same built in Python) may say.

A workflow is a trigger, a list of steps, and some settings::

    name: inbox-triage
    trigger: {type: maildir, path: ~/Mail/INBOX}
    steps:
      - id: label
        task: classify                     # any task of the task registry, by name (`plait workflows steps`)
        with: {labels: [work, personal, newsletter]}
      - id: gist
        when: "label.label == 'work'"      # a Jinja2 expression over the item and earlier outputs
        task: summarize
        with: {text: "{{ item.body }}", style: one-line}
      - sink: file                         # sinks act: files, digests, moves, .ics, tables, webhooks, mail
        with: {path: "triage/{{ label.label }}/{{ key_slug }}.md"}

Every step has exactly one kind key: ``task``, ``template``, ``set``, ``route``, ``map``, ``http`` or ``sink``.
Options of triggers and sinks are checked against the registered trigger's or sink's own model by
:mod:`plait.workflows.loader`, which also reports the file and line of every problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, field_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# Names the template context already uses: a step id must not hide them.
RESERVED_IDS = frozenset({"item", "vars", "now", "received", "workflow", "steps", "key", "key_slug", "env", "loop",
                          "element", "index"})
STEP_KINDS = ("task", "template", "set", "route", "map", "http", "sink")


class RetryPolicy(BaseModel):
    """How often a failing step is tried, and how long to wait in between (doubling each time)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(default=3, ge=1, le=100, description="tries in all, the first included")
    backoff_seconds: float = Field(default=2.0, ge=0, description="wait before the second try; doubles after each")
    max_backoff_seconds: float = Field(default=300.0, ge=0, description="longest wait between tries")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str | None = Field(None, pattern=ID_PATTERN, description="name of the step's output in templates")
    when: str | None = Field(None, description="Jinja2 expression; the step runs only when it is true")
    retry: RetryPolicy | None = Field(None, description="overrides the workflow's retry policy")
    concurrency: int | None = Field(None, ge=1, le=64, description="at most this many items in this step at once")

    @property
    def kind(self) -> str:
        raise NotImplementedError

    @property
    def step_id(self) -> str:
        assert self.id is not None, "ids are assigned by Workflow"
        return self.id

    def fingerprint(self) -> str:
        """A hash of the definition: a step edited since an item's output was stored runs again."""
        data = json.dumps(self.model_dump(mode="json", by_alias=True, exclude={"steps", "route"}),
                          sort_keys=True, default=str)
        return hashlib.sha256(data.encode()).hexdigest()[:16]


class TaskStep(_Step):
    task: str = Field(description="a task by name: summarize, classify, extract, sentiment…")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with",
                                  description="the task's arguments; strings are templates")
    model: str | None = Field(None, description="catalog model for the task (default: the settings')")

    @property
    def kind(self) -> str:
        return "task"


class TemplateStep(_Step):
    template: str = Field(description="a Jinja2 template; the step's output is the rendered text")

    @property
    def kind(self) -> str:
        return "template"


class SetStep(_Step):
    set: dict[str, Any] = Field(description="fields to set on the item; values are templates")

    @property
    def kind(self) -> str:
        return "set"


class HttpRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    json_: Any = Field(None, alias="json", description="a JSON body (a template expression or a structure)")
    data: str | None = Field(None, description="a text body")
    timeout: float = Field(30.0, gt=0, le=600)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class HttpStep(_Step):
    http: HttpRequest

    @property
    def kind(self) -> str:
        return "http"


class SinkStep(_Step):
    sink: str = Field(description="a sink by name: file, digest, move, copy, tag, ics, table, webhook, mail, index")
    with_: dict[str, Any] = Field(default_factory=dict, alias="with", description="the sink's options")

    @property
    def kind(self) -> str:
        return "sink"


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=ID_PATTERN)
    when: str | None = Field(None, description="expression; the first branch whose `when` is true runs "
                                               "(a branch without one is the default)")
    steps: list[Step] = Field(default_factory=list)


class RouteStep(_Step):
    route: list[Branch] = Field(min_length=1)

    @property
    def kind(self) -> str:
        return "route"


class MapStep(_Step):
    map: str = Field(description="expression giving a list; the steps run once per element")
    as_: str = Field("element", alias="as", pattern=ID_PATTERN, description="the element's name in templates")
    steps: list[Step] = Field(min_length=1)

    @property
    def kind(self) -> str:
        return "map"


_TAGS = {"task": "TaskStep", "template": "TemplateStep", "set": "SetStep", "route": "RouteStep",
         "map": "MapStep", "http": "HttpStep", "sink": "SinkStep"}
STEP_TAGS = frozenset(_TAGS.values())


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in _TAGS.items():
            if key in value:
                return tag
        return None
    return _TAGS.get(getattr(value, "kind", ""), None)


Step = Annotated[
    Annotated[TaskStep, Tag("TaskStep")] | Annotated[TemplateStep, Tag("TemplateStep")]
    | Annotated[SetStep, Tag("SetStep")] | Annotated[RouteStep, Tag("RouteStep")]
    | Annotated[MapStep, Tag("MapStep")] | Annotated[HttpStep, Tag("HttpStep")]
    | Annotated[SinkStep, Tag("SinkStep")],
    Discriminator(_step_kind, custom_error_type="step_kind",
                  custom_error_message="a step needs one kind key: " + ", ".join(STEP_KINDS)),
]
Branch.model_rebuild()
RouteStep.model_rebuild()
MapStep.model_rebuild()


class NetworkSpec(BaseModel):
    """What a workflow's HTTP requests may reach beyond public addresses (see plait.security.ssrf)."""

    model_config = ConfigDict(extra="forbid")

    allow: list[str] = Field(default_factory=list, description="hosts, addresses or networks in loopback, "
                             "link-local or private ranges it may reach: 127.0.0.1:8080, nas.local, 192.168.1.0/24")
    redirects: int = Field(0, ge=0, le=10, description="redirects to follow, each checked again (0: none)")

    @field_validator("allow")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        from plait.errors import InputError
        from plait.security.ssrf import policy_from

        try:
            policy_from(value, 0)
        except InputError as exc:
            raise ValueError(str(exc)) from exc  # a validation error naming the entry
        return value


class TriggerSpec(BaseModel):
    """``type`` picks a registered trigger; the other keys are its options (checked by the loader)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="folder, maildir, mbox, imap, calendar, feed, schedule, webhook, manual")
    start: Literal["beginning", "now"] = Field(
        "beginning", description="on the first run, process what is already there (beginning) or only what "
                                 "arrives later (now; `plait run --backfill` processes the rest)")

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class Workflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="the workflow's name; its state is kept under it")
    description: str = ""
    enabled: bool = Field(True, description="whether `plait up` runs it")
    trigger: TriggerSpec
    steps: list[Step] = Field(min_length=1)
    vars: dict[str, Any] = Field(default_factory=dict, description="values templates can use as vars.NAME")
    output: str | None = Field(None, description="folder for relative sink paths (default: "
                                                 "$PLAIT_HOME/output/NAME); relative to the workflow file")
    concurrency: int = Field(1, ge=1, le=64, description="items processed at once")
    executor: Literal["local", "ray"] = Field("local", description="where task steps run: here, or on Ray workers "
                                              "(RAY_ADDRESS, else a Ray instance on this machine; needs plait[ray])")
    network: NetworkSpec = Field(default_factory=lambda: NetworkSpec.model_validate({}),
                                 description="private addresses its HTTP requests may reach, and redirects (none "
                                             "by default)")
    batch_size: int = Field(32, ge=1, le=10_000, description="items taken from the trigger at a time")
    retry: RetryPolicy = Field(default_factory=lambda: RetryPolicy())  # a fresh default per workflow

    # Where the spec came from: relative paths in options resolve against its folder.
    _source: Path | None = PrivateAttr(None)

    def model_post_init(self, context: Any) -> None:
        assign_ids(self.steps, set())

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def base_dir(self) -> Path:
        return self._source.parent if self._source else Path.cwd()


def assign_ids(steps: list[Any], taken: set[str]) -> None:
    """Give each step without an ``id`` one: its task or sink name if free, else KIND_N (1-based position)."""
    for step in steps:
        if step.id:
            taken.add(step.id)
    for position, step in enumerate(steps, 1):
        if not step.id:
            base = {"task": getattr(step, "task", ""), "sink": getattr(step, "sink", "")}.get(step.kind, "")
            base = re.sub(r"\W", "_", base)
            candidate = base if base and re.match(ID_PATTERN, base) and base not in taken \
                and base not in RESERVED_IDS else f"{step.kind}_{position}"
            n = 2
            while candidate in taken:
                candidate = f"{step.kind}_{position}_{n}"
                n += 1
            step.id = candidate
            taken.add(candidate)
        if isinstance(step, RouteStep):
            for branch in step.route:
                assign_ids(branch.steps, taken)
        elif isinstance(step, MapStep):
            assign_ids(step.steps, taken)


def walk_steps(steps: list[Any], prefix: tuple[Any, ...] = ("steps",)) -> list[tuple[tuple[Any, ...], Any]]:
    """Every step, nested ones included, with its location in the spec (for error messages)."""
    found = []
    for i, step in enumerate(steps):
        loc = (*prefix, i)
        found.append((loc, step))
        if isinstance(step, RouteStep):
            for b, branch in enumerate(step.route):
                found.extend(walk_steps(branch.steps, (*loc, "route", b, "steps")))
        elif isinstance(step, MapStep):
            found.extend(walk_steps(step.steps, (*loc, "steps")))
    return found
