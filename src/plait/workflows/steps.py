"""Steps that compute: tasks by name, templates, set, HTTP calls. (``route`` and ``map`` are control
flow, run by the engine; sinks act, see :mod:`plait.workflows.sinks`.)

A ``task:`` step names a task of plait's task registry (:mod:`plait.tasks.registry`): its ``with`` arguments
(templates rendered) are the task's request, checked by the task's own request model, and its result is
stored in the task's one JSON form (the same JSON the HTTP route answers), so a later template reads
``label.label`` or ``gist.text``. When ``with`` leaves out the task's main input (``text``, ``texts``,
``question``…), it is filled from the item's field of that name, else ``item.text``; a task that takes a
file's content (see, hear) gets the file of a file trigger's item (``item.path``); a task that reads
documents (summarize, extract, sentiment) given a mail trigger's item gets the message as a mail Document
too, so it reads what the sender wrote and resolves dates against the mail's own Date. The step's
``model`` fills the request's ``model``.

Workflow functions (:data:`FUNCTIONS`) are steps that only make sense inside a workflow (``read``: a file
into text); they are called the same way, except that the file one reads is ``path`` from ``with`` (else
the item's ``path``, never its text), and one from item data must lie in the trigger's folders, the output
folder or a folder in the step's ``within``, as a sink's input must.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import InputError
from plait.workflows.errors import StepError

if TYPE_CHECKING:
    from plait.tasks.registry import Task
    from plait.workflows.context import StepContext
    from plait.workflows.spec import HttpStep, SetStep, TaskStep, TemplateStep

MAX_TEXT_OUTPUT = 200_000  # characters of an HTTP response kept in the item's state

# Name → "package.module:function" of a workflow function, imported when a workflow uses it.
FUNCTIONS: dict[str, str] = {
    "read": "plait.workflows.functions:read",
}
# A workflow function's argument naming the file it reads: checked like a sink's input, and ``within`` (the
# folders an item's path may also name) comes with it.
FILE_ARGUMENT = "path"


def step_tasks() -> list[str]:
    """Every name a ``task:`` step takes: the registry's tasks and the workflow functions."""
    from plait.tasks.registry import task_names

    return sorted({*task_names(), *FUNCTIONS})


def _task(name: str) -> Task | None:
    """The registry's task of that name; None for a workflow function; StepError when neither."""
    from plait.tasks.registry import registry

    if name in FUNCTIONS:
        return None
    if name not in registry().names():
        raise StepError(f"unknown task '{name}'; known tasks: {', '.join(step_tasks())}")
    try:
        return registry().get(name)
    except ImportError as exc:
        raise StepError(f"task '{name}' is not available in this installation of plait ({exc})") from exc


@cache
def _function(name: str) -> Callable[..., Any]:
    module, _, attr = FUNCTIONS[name].partition(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), attr)
    return fn


def check_task(name: str) -> None:
    """StepError when ``name`` is no task or workflow function in this installation."""
    _task(name)


def check_task_arguments(name: str, arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems with a task step's ``with`` (argument, message), found without running anything."""
    task = _task(name)
    if task is None:
        params = inspect.signature(_function(name)).parameters
        known = set(params) - {"runtime"} | ({"within"} if FILE_ARGUMENT in params else set())
    else:
        known = set(task.request.model_fields)
    return [(arg, f"task '{name}' has no argument '{arg}'; it takes {', '.join(sorted(known))}")
            for arg in arguments if arg not in known]


def run_task(step: TaskStep, ctx: StepContext, execute: Callable[[Task, Any, Any], Any] | None = None) -> Any:
    """Run a task step: arguments rendered and checked here; ``execute(task, request, document)`` (when given:
    a Ray pool) runs the checked request and returns the task's JSON."""
    task = _task(step.task)
    item = ctx.variables.get("item") or {}
    if task is None:
        return to_jsonable(_run_function(step, ctx, item))
    args = {k: ctx.render(v) for k, v in step.with_.items()}
    from plait.tasks.registry import TaskContext, encode_base64

    document = None
    if task.input and task.input not in args:
        if task.file_input:
            args[task.input] = encode_base64(_item_file(item, step.task))
        else:
            args[task.input] = _item_field(item, task.input, step.task)
            if task.reads_documents and isinstance(item, Mapping):
                from plait.workflows.triggers.mail import item_document

                document = item_document(item)
    if step.model and "model" in task.request.model_fields and "model" not in args:
        args["model"] = step.model
    try:
        request = task.parse(args)
    except InputError as exc:
        raise StepError(str(exc)) from exc
    if execute is not None:
        return execute(task, request, document)
    return task.to_json(task.run(request, TaskContext(ctx.runtime, document=document)))


def _run_function(step: TaskStep, ctx: StepContext, item: Any) -> Any:
    fn = _function(step.task)
    params = inspect.signature(fn).parameters
    args = {k: ctx.render(v) for k, v in step.with_.items() if k not in (FILE_ARGUMENT, "within")}
    if FILE_ARGUMENT in params:
        args[FILE_ARGUMENT] = str(_function_file(step, ctx, item))
    first = next(iter(params))
    if first not in args:
        args[first] = _item_field(item, first, step.task)
    return fn(**args)


def _function_file(step: TaskStep, ctx: StepContext, item: Any) -> Path:
    """The file a workflow function reads, chosen as a sink's input is (StepContext.input_path): a path the
    author wrote may be anywhere; one from item data only in the trigger's folders, the output folder or the
    step's ``within``. Never the item's text, which a webhook's body fills; and a file of the home chosen by
    an item would be read decrypted."""
    written = step.with_.get(FILE_ARGUMENT)
    if written is None:
        if not (isinstance(item, Mapping) and item.get("path")):
            raise StepError(f"task '{step.task}' reads a file: give its `path` in the step's `with` (this item "
                            "has none; a folder trigger's items do)")
        written = "{{ item.path }}"
    within = step.with_.get("within") or ()
    return ctx.input_path(str(written), tuple(str(w) for w in ([within] if isinstance(within, str) else within)))


def _item_field(item: Any, field: str, task: str) -> Any:
    if isinstance(item, Mapping):
        for name in (field, "text"):
            if item.get(name) not in (None, ""):
                return item[name]
    raise StepError(f"task '{task}' needs '{field}': give it in the step's `with`, e.g. "
                    f"{field}: \"{{{{ item.text }}}}\"")


def _item_file(item: Any, task: str) -> bytes:
    path = item.get("path") if isinstance(item, Mapping) else None
    if not path:
        raise StepError(f"task '{task}' reads a file: this item has none (a folder trigger's items do)")
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise StepError(f"task '{task}': cannot read {path} ({exc.strerror or exc})") from exc


def run_template(step: TemplateStep, ctx: StepContext) -> str:
    return ctx.render_text(step.template)


def run_set(step: SetStep, ctx: StepContext) -> dict[str, Any]:
    return {name: to_jsonable(ctx.render(value)) for name, value in step.set.items()}


class HttpStatusError(Exception):
    """A 5xx or 429 answer: worth retrying (not a StepError, which is permanent)."""


def run_http(step: HttpStep, ctx: StepContext) -> dict[str, Any]:
    import httpx

    req = step.http
    url = ctx.render_text(req.url)
    headers = {k: ctx.render_text(v) for k, v in req.headers.items()}
    params = ctx.render(req.params)
    body = to_jsonable(ctx.render(req.json_)) if req.json_ is not None else None
    data = ctx.render_text(req.data) if req.data is not None else None
    if ctx.dry_run and req.method != "GET":
        return {"dry_run": True, "method": req.method, "url": url}
    try:
        resp = ctx.http().request(req.method, url, headers=headers, params=params, json=body, content=data,
                                  timeout=req.timeout)
    except httpx.InvalidURL as exc:
        raise StepError(f"{req.method} {url}: invalid URL ({exc})") from exc
    except httpx.UnsupportedProtocol as exc:
        raise StepError(f"{req.method} {url}: {exc}; use an http:// or https:// URL") from exc
    except httpx.TooManyRedirects as exc:
        raise StepError(f"{req.method} {url}: more redirects than the workflow's network.redirects allows") from exc
    if 300 <= resp.status_code < 400:
        raise StepError(f"{req.method} {url} answered {resp.status_code} (a redirect to "
                        f"{resp.headers.get('location', '?')[:200]}); set the workflow's network.redirects to follow")
    if resp.status_code >= 500 or resp.status_code == 429:
        raise HttpStatusError(f"{req.method} {url} answered {resp.status_code}; will retry")
    if resp.status_code >= 400:
        raise StepError(f"{req.method} {url} answered {resp.status_code}: {resp.text[:200]}")
    out: dict[str, Any] = {"status": resp.status_code}
    if "json" in resp.headers.get("content-type", ""):
        try:
            out["json"] = resp.json()
        except ValueError:
            out["text"] = resp.text[:MAX_TEXT_OUTPUT]
    else:
        out["text"] = resp.text[:MAX_TEXT_OUTPUT]
    return out


def to_jsonable(value: Any) -> Any:
    """A JSON-ready copy of a value (an item, a set step's values, a workflow function's result): what the
    item's state stores and templates read. Bytes become base64, NaN null, numpy values numbers."""
    from pydantic_core import to_jsonable_python

    return to_jsonable_python(value, bytes_mode="base64", inf_nan_mode="null",
                              fallback=lambda v: v.tolist() if callable(getattr(v, "tolist", None)) else str(v))
