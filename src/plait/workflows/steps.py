"""Steps that compute: tasks by name, templates, set, HTTP calls. (``route`` and ``map`` are control
flow, run by the engine; sinks act, see :mod:`plait.workflows.sinks`.)

Tasks are found through one explicit registry, :data:`TASKS`: a name and the ``module:function`` that
implements it, imported only when a workflow uses it. A new task plugs in with one line::

    register_task("translate", "plait.tasks.translate:translate")

A task step calls the function with the step's ``with`` arguments (templates rendered), plus
``runtime=`` and ``model=`` when the function takes them. When ``with`` leaves out the function's first
parameter, it is filled from the item's field of that name, else ``item.text``, else ``item.path``.
The result is stored as JSON (dataclasses and pydantic models become objects, numpy arrays lists), so a
later template reads ``label.label`` or ``gist.text``.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
import importlib.util
import inspect
import json
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.workflows.errors import StepError

if TYPE_CHECKING:
    from plait.workflows.context import StepContext
    from plait.workflows.spec import HttpStep, SetStep, TaskStep, TemplateStep

MAX_TEXT_OUTPUT = 200_000  # characters of an HTTP response kept in the item's state


@dataclass(frozen=True)
class TaskEntry:
    name: str
    target: str  # "package.module:function"
    description: str = ""
    # Turns the rendered arguments into what the function takes (e.g. chat messages from dicts).
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None


TASKS: dict[str, TaskEntry] = {}


def register_task(name: str, target: str, description: str = "", *,
                  prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
    if name in TASKS:
        raise ValueError(f"a workflow task '{name}' is registered twice")
    if ":" not in target:
        raise ValueError(f"task target '{target}' must be 'package.module:function'")
    TASKS[name] = TaskEntry(name, target, description, prepare)


def _chat_messages(args: dict[str, Any]) -> dict[str, Any]:
    from plait.models.base import Message

    messages = args.get("messages")
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if isinstance(messages, list):
        args["messages"] = [m if isinstance(m, Message) else Message(m["role"], m["content"]) for m in messages]
    return args


# The tasks of plait.tasks, then the workflow helpers. Modules are imported only when a workflow uses them.
register_task("generate", "plait.tasks.generate:generate", "complete a prompt with the chat model")
register_task("chat", "plait.tasks.generate:chat", "answer a list of {role, content} messages", prepare=_chat_messages)
register_task("embed", "plait.tasks.embed:embed", "embedding vectors of texts")
register_task("summarize", "plait.tasks.summarize:summarize", "summarise a text (extractive or abstractive)")
register_task("classify", "plait.tasks.classify:classify", "label a text (zero-shot labels or a tuned classifier)")
register_task("extract", "plait.tasks.extract:extract", "people, dates, amounts, contacts, action items")
register_task("extract_json", "plait.tasks.extract:extract_json", "fill a JSON schema from a text")
register_task("sentiment", "plait.tasks.sentiment:sentiment", "positive/negative/neutral with a score")
register_task("plan", "plait.tasks.plan:plan", "plan steps or a schedule")
register_task("search", "plait.tasks.search:search", "search the personal index")
register_task("ask", "plait.tasks.ask:ask", "answer a question from the personal index, with sources")
register_task("recommend", "plait.tasks.recommend:recommend", "recommend items for a user")
register_task("see", "plait.tasks.see:see", "what is in an image")
register_task("hear", "plait.tasks.hear:hear", "transcribe speech")
register_task("speak", "plait.tasks.speak:speak", "text to speech (WAV)")
register_task("explain", "plait.tasks.explain:explain", "which words drove a classifier's decision")
register_task("redact", "plait.security.redact:redact", "remove personal data from a text")
register_task("read", "plait.workflows.functions:read", "read a file into text with plait's readers")
register_task("relevance", "plait.workflows.functions:relevance", "how close a text is to some interests (0-1)")


@cache
def task_function(name: str) -> Callable[..., Any]:
    """The function behind a task name; StepError if unknown or not available in this installation."""
    entry = TASKS.get(name)
    if entry is None:
        raise StepError(f"unknown task '{name}'; known tasks: {', '.join(available_tasks())}")
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise StepError(f"task '{name}' is not available in this installation of plait ({module_name} is "
                            "missing); known tasks: " + ", ".join(sorted(available_tasks()))) from exc
        raise
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise StepError(f"task '{name}': {entry.target} is not a function")
    return fn


def available_tasks() -> list[str]:
    """Registered tasks whose module is installed (cheap: finds modules without importing them)."""
    found = []
    for name, entry in TASKS.items():
        module_name = entry.target.partition(":")[0]
        try:
            if importlib.util.find_spec(module_name) is not None:
                found.append(name)
        except ModuleNotFoundError:
            continue
    return sorted(found)


@dataclass(frozen=True)
class Signature:
    first: str | None  # the first parameter, when required: filled from the item if `with` leaves it out
    names: frozenset[str]
    open: bool  # takes **kwargs
    runtime: bool
    model: bool


@cache
def task_signature(name: str) -> Signature:
    params = list(inspect.signature(task_function(name)).parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    first = positional[0].name if positional and positional[0].default is inspect.Parameter.empty else None
    names = frozenset(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return Signature(first, names - {"runtime", "progress"}, any(p.kind == p.VAR_KEYWORD for p in params),
                     "runtime" in names, "model" in names)


def check_task_arguments(name: str, arguments: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Problems with a task step's ``with`` (argument, message), found without running anything."""
    sig = task_signature(name)
    if sig.open:
        return []
    return [(arg, f"task '{name}' has no argument '{arg}'; it takes {', '.join(sorted(sig.names))}")
            for arg in arguments if arg not in sig.names]


def run_task(step: TaskStep, ctx: StepContext) -> Any:
    fn = task_function(step.task)
    sig = task_signature(step.task)
    args = {k: ctx.render(v) for k, v in step.with_.items()}
    if sig.first and sig.first not in args:
        item = ctx.variables.get("item") or {}
        for field in (sig.first, "text", "path"):
            if isinstance(item, Mapping) and item.get(field) not in (None, ""):
                args[sig.first] = item[field]
                break
        else:
            raise StepError(f"task '{step.task}' needs '{sig.first}': give it in the step's `with`, e.g. "
                            f"{sig.first}: \"{{{{ item.text }}}}\"")
    if sig.runtime:
        args["runtime"] = ctx.runtime
    if step.model and sig.model:
        args["model"] = step.model
    entry = TASKS[step.task]
    if entry.prepare:
        args = entry.prepare(args)
    return to_jsonable(fn(**_coerce(step.task, args)))


@cache
def _hints(name: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(task_function(name))
    except Exception:  # noqa: BLE001 - names only imported for type checking: no coercion for those
        return {}


def _coerce(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """YAML gives dicts and strings; a task may want a pydantic config or a datetime: convert those."""
    from pydantic import BaseModel

    hints = _hints(name)
    out = dict(args)
    for arg, value in args.items():
        hint = hints.get(arg)
        if hint is None:
            continue
        options = typing.get_args(hint) or (hint,)
        if isinstance(value, dict):
            model = next((t for t in options if isinstance(t, type) and issubclass(t, BaseModel)), None)
            if model is not None:
                try:
                    out[arg] = model.model_validate(value)
                except ValueError as exc:
                    raise StepError(f"task '{name}': argument '{arg}' is invalid: {exc}") from exc
        elif isinstance(value, str) and datetime in options:
            try:
                out[arg] = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise StepError(f"task '{name}': argument '{arg}' is not an ISO 8601 time: '{value}'") from exc
    return out


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


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-ready copy of a task's result: what the item's state stores and templates read."""
    if _depth > 50:
        return str(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, _depth + 1) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return to_jsonable(value.value, _depth + 1)
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(bytes(value)).decode("ascii"), "bytes": len(value)}
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return to_jsonable(value.tolist(), _depth + 1)
    for method in ("as_dict", "model_dump"):
        fn = getattr(value, method, None)
        if callable(fn):
            try:
                return to_jsonable(fn(), _depth + 1)
            except TypeError:
                pass
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
        # Properties carry useful derived values (Classification.abstained); keep the simple ones.
        for name, _ in inspect.getmembers(type(value), lambda a: isinstance(a, property)):
            if name not in out and not name.startswith("_"):
                try:
                    got = getattr(value, name)
                except Exception:  # noqa: BLE001, S112 - a property that cannot be read is left out
                    continue
                if got is None or isinstance(got, bool | int | float | str):
                    out[name] = to_jsonable(got, _depth + 1)
        return out
    return json.loads(json.dumps(value, default=str))
