"""The task registry: every task plait offers, defined once.

A :class:`Task` holds everything the doors to a task need: its request model (pydantic, ``extra="forbid"``,
importable from the task's own module), how to run one request, the result type and the one JSON form of a
result, whether it streams or batches, and the key scope it needs. The CLI (``plait <task>``), the HTTP
server (``POST /v1/<task>``), workflow steps (``task: <task>``) and the web page's forms all reach tasks
through this registry and nothing else, so the same request gives the same JSON everywhere and a task
registered once appears everywhere.

Built-in tasks are declared in :mod:`plait.tasks.builtin` exactly as a plugin declares its own: a name and
the ``"package.module:ATTRIBUTE"`` of its :class:`Task`, imported on first use, so listing the tasks imports
nothing heavy. Plugins are installed packages with an entry point in the ``plait.tasks`` group whose value
is that same target. A name declared twice is an error, whoever declares it.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from plait.errors import InputError, PlaitError

if TYPE_CHECKING:
    from plait.models.base import Delta, GenerationRequest
    from plait.readers.document import Document
    from plait.runtime import Runtime
    from plait.settings import Settings

# What an API key may call (plait.serve.auth checks keys; defined here, where tasks name the scope they need).
Scope = Literal["chat", "tasks", "index", "admin"]
ENTRY_POINT_GROUP = "plait.tasks"
R = TypeVar("R")
MAX_TEXT_CHARS = 2_000_000  # a request's text; the server's body-size limit usually bites first
# ``json_schema_extra`` of a request field that names a file or folder on plait's machine: a workflow or the
# CLI (the owner) may set it; an HTTP request may not, or any key holder could make the server read its disk.
SERVER_PATH: dict[str, Any] = {"server_path": True}


def server_path_fields(request: type[BaseModel]) -> list[str]:
    """The fields of ``request`` marked :data:`SERVER_PATH`."""
    return [name for name, f in request.model_fields.items()
            if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("server_path")]


class TaskRequest(BaseModel):
    """Base of every task's request model: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class TaskContext:
    """What a door hands a task besides its request.

    ``document`` is the file the input came from, when there is one (the CLI reading a PDF, a workflow
    item from a mailbox): tasks that read structure (a mail's date, a document's sections) use it, and
    the request's text field holds its text. ``progress`` is told how many items are done.
    """

    runtime: Runtime
    document: Document | None = None
    progress: Callable[[int], None] | None = None


class Streamed(Protocol):
    """A result that arrives piece by piece (generate, chat, ask).

    ``model`` is the generation model whose turn the answer waits for (None when no model is needed, e.g.
    ask found nothing relevant) and ``request`` carries its cancel event. ``events()`` are told before the
    text (ask: its sources); iterating yields the text's deltas, in a worker thread; ``result()`` is the
    task's result once the iteration is over.
    """

    @property
    def model(self) -> str | None: ...

    @property
    def request(self) -> GenerationRequest | None: ...

    def events(self) -> list[dict[str, Any]]: ...

    def __iter__(self) -> Iterator[Delta]: ...

    def result(self) -> Any: ...


@dataclass(frozen=True)
class Batch:
    """How the items of many requests run in one model call (the server's micro-batching).

    ``items(request)`` gives a request's items; ``key(request)`` groups requests that may share a batch
    (same model, same labels…); ``runner(request, runtime)`` makes the batch function for a group (called
    once per group, so it may hold a prepared classifier); ``answer(request, results)`` builds the
    request's result from its own items' results.
    """

    items: Callable[[Any], Sequence[Any]]
    key: Callable[[Any], str]
    runner: Callable[[Any, Runtime], Callable[[list[Any]], Sequence[Any]]]
    answer: Callable[[Any, list[Any]], Any]


def _no_models(request: Any, settings: Settings) -> Sequence[str | None]:
    return ()


def _always(request: Any) -> bool:
    return True


@dataclass(frozen=True, kw_only=True)
class Task:
    """One task, as every door sees it."""

    name: str
    summary: str  # one line: the CLI's help, the OpenAPI summary, the page's form title
    request: type[TaskRequest]
    result: Any  # the result type: documents the JSON (a dataclass, a model, a union of them)
    run: Callable[[Any, TaskContext], Any]  # one request -> its result (blocking)
    stream: Callable[[Any, TaskContext], Streamed] | None = None  # for tasks that can stream their answer
    batch: Batch | None = None
    scope: Scope = "tasks"
    # The request field a workflow item's text (or the CLI's input file or standard input) fills when not
    # given; None when the task has no such main input.
    input: str | None = "text"
    reads_documents: bool = False  # the task uses TaskContext.document (so the CLI reads files with readers)
    # The catalog names an answer depends on (cache keys change with the model); settings fill defaults.
    models: Callable[[Any, Settings], Sequence[str | None]] = _no_models
    # Whether the same request always gives the same answer (so the HTTP route may cache it). Not read for
    # a task that streams: its answers are not cached (the OpenAI and Ollama routes cache generation).
    cacheable: Callable[[Any], bool] = _always
    # A result that is not JSON (speak: a WAV file) is rendered to these bytes over HTTP and to a file by
    # the CLI; its JSON form (workflows) is still `to_json`.
    media_type: str = "application/json"
    render: Callable[[Any], bytes] | None = None
    # The JSON form of a result, when the result type's own (pydantic's) is not the one wanted, and the
    # type of that JSON (what the OpenAPI document and the page's forms show).
    serialize: Callable[[Any], Any] | None = None
    response: Any = None
    # The input field holds a file's content, base64-encoded (see, hear): the CLI reads the file it is
    # given, a workflow the file of a file trigger's item. Requests carry content, never a path.
    file_input: bool = False

    @cached_property
    def _adapter(self) -> TypeAdapter[Any]:
        return TypeAdapter(self.result)

    @property
    def response_type(self) -> Any:
        """The type of the JSON a result becomes (documents it)."""
        return self.response if self.response is not None else self.result

    def to_json(self, result: Any) -> Any:
        """The one JSON form of a result: what HTTP answers, `--json` prints and workflows store."""
        if self.serialize is not None:
            return self.serialize(result)
        return self._adapter.dump_python(result, mode="json")

    def parse(self, data: Any) -> TaskRequest:
        """A request from untyped data (a workflow's ``with``, generated CLI options); InputError names the
        field that is wrong."""
        if isinstance(data, self.request):
            return data
        try:
            return self.request.model_validate(data)
        except ValidationError as exc:
            raise InputError(f"{self.name}: {describe(exc)}") from exc

    def __call__(self, request: Any, runtime: Runtime | None = None, **context: Any) -> Any:
        """Run one request (a request model or a mapping) and return the task's result object."""
        from plait.runtime import get_runtime

        return self.run(self.parse(request), TaskContext(runtime or get_runtime(), **context))


def file_content(description: str) -> Any:
    """A request field holding a file's content: base64, or a data: URL as a browser makes it."""
    from pydantic import Field

    return Field(min_length=1, description=f"{description}: the file's content, base64 (or a data: URL)",
                 json_schema_extra={"contentEncoding": "base64"})


def decode_base64(value: str, what: str) -> bytes:
    """The bytes of a :func:`file_content` field; InputError when it is not base64 or is empty."""
    import base64
    import binascii

    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{what} must be base64-encoded file content") from exc
    if not data:
        raise InputError(f"{what} is empty")
    return data


def run_decoded(values: Sequence[str], what: str, failed: Callable[[str], R],
                run: Callable[[list[bytes]], Sequence[R]]) -> list[R]:
    """A batch of base64 uploads: :func:`decode_base64` each, ``run`` on those that decode, and
    ``failed(message)`` (a result carrying ``error``) in place of each that does not, so one request's bad
    upload does not fail the other requests of the batch."""
    files: list[bytes | R] = []
    for value in values:
        try:
            files.append(decode_base64(value, what))
        except InputError as exc:
            files.append(failed(str(exc)))
    good = [f for f in files if isinstance(f, bytes)]
    done = iter(run(good) if good else [])
    return [next(done) if isinstance(f, bytes) else f for f in files]


def encode_base64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def one_file(request: Any, results: list[Any]) -> Any:
    """A file task's answer to one request in a batch (see, hear): its result, or the error its file gave
    (results carry ``error`` so one bad file does not fail the others of the batch)."""
    if results[0].error:
        raise InputError(results[0].error)
    return results[0]


def describe(exc: ValidationError) -> str:
    """A pydantic validation error as one line a person can act on."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "request"
        limit = (error.get("ctx") or {})
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "string_too_short" and limit.get("min_length") == 1:
            message = "is empty"
        elif error["type"] == "string_too_long":
            message = f"is too long: at most {limit.get('max_length', 0):,} characters at once; split it"
        else:
            message = error["msg"]
        parts.append(f"{where}: {message}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


@dataclass
class _Declaration:
    name: str
    target: str  # "package.module:ATTRIBUTE"
    by: str  # who declared it: "plait" or the plugin's distribution, for error messages
    task: Task | None = None


@dataclass
class Registry:
    """Task names → declarations; loads a task's module when the task is first used."""

    _declared: dict[str, _Declaration] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def declare(self, name: str, target: str, *, by: str = "plait") -> None:
        if ":" not in target:
            raise ValueError(f"task target '{target}' must be 'package.module:ATTRIBUTE'")
        if name in self._declared:
            raise ValueError(f"task '{name}' is declared twice (by {self._declared[name].by} and by {by})")
        self._declared[name] = _Declaration(name, target, by)

    def target(self, name: str) -> tuple[str, str]:
        """Where a declared task is defined and who declared it: ``("package.module:ATTRIBUTE", by)`` (so
        another process, a Ray worker, can declare it the same way)."""
        declaration = self._declared.get(name)
        if declaration is None:
            raise InputError(f"unknown task '{name}'; plait's tasks: {', '.join(self.names())}")
        return declaration.target, declaration.by

    def names(self, *, by: str | None = None) -> list[str]:
        """Every declared task whose module is installed (only those declared ``by`` someone, when given),
        sorted; imports nothing."""
        return sorted(d.name for d in self._declared.values()
                      if (by is None or d.by == by) and _module_exists(d.target))

    def get(self, name: str) -> Task:
        declaration = self._declared.get(name)
        if declaration is None:
            raise InputError(f"unknown task '{name}'; plait's tasks: {', '.join(self.names())}")
        with self._lock:
            if declaration.task is None:
                declaration.task = _load(declaration)
        return declaration.task

    def all(self) -> list[Task]:
        """Every available task, loaded; a task whose optional library is missing is left out."""
        out = []
        for name in self.names():
            try:
                out.append(self.get(name))
            except ImportError:
                continue
        return out


def _module_exists(target: str) -> bool:
    try:
        return importlib.util.find_spec(target.partition(":")[0]) is not None
    except ImportError:
        return False


def _load(declaration: _Declaration) -> Task:
    module_name, _, attribute = declaration.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise PlaitError(f"task '{declaration.name}' is not available: {module_name} is missing") from exc
        raise
    task = getattr(module, attribute, None)
    if not isinstance(task, Task):
        raise TypeError(f"{declaration.target} (task '{declaration.name}') is not a plait Task")
    if task.name != declaration.name:
        raise ValueError(f"{declaration.target} defines task '{task.name}', declared as '{declaration.name}'")
    return task


_registry: Registry | None = None
_registry_lock = threading.Lock()


def registry() -> Registry:
    """The process's task registry: built-ins, then installed plugins (made on first use)."""
    global _registry
    with _registry_lock:
        if _registry is None:
            made = Registry()
            from plait.tasks.builtin import declare_builtin

            declare_builtin(made)
            _declare_plugins(made)
            _registry = made
        return _registry


def _declare_plugins(into: Registry) -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        into.declare(ep.name, ep.value, by=ep.dist.name if ep.dist else ep.value)


def get_task(name: str) -> Task:
    return registry().get(name)


def task_names() -> list[str]:
    return registry().names()
