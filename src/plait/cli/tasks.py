"""The CLI's door to the task registry.

Commands with their own ergonomics (``plait summarize FILE…``, ``plait chat``) build a task's request from
their options, run it through :func:`run_task` and print ``--json`` with :func:`print_json`, the task's
one JSON form. Every registered task without such a command (a plugin's, or a built-in such as
``relevance``) gets one generated from its request model by :func:`add_task_commands`: the main input as
an argument (or standard input), each other field an option, ``--json`` for the JSON form. So every task
is a command, and the same request gives the same JSON as over HTTP and in workflows.
"""

from __future__ import annotations

import inspect
import json
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic_core import PydanticUndefined

from plait.cli.common import read_input, state, write
from plait.errors import InputError
from plait.tasks.registry import Streamed, Task, TaskContext, encode_base64, get_task, registry


def _prepare(ctx: typer.Context, name: str, fields: dict[str, Any], context: dict[str, Any]
             ) -> tuple[Task, Any, TaskContext]:
    task = get_task(name)
    # Options left unset (None, or an empty repeatable option) mean the request's defaults.
    request = task.parse({k: v for k, v in fields.items() if v is not None and v != []})
    return task, request, TaskContext(state(ctx).runtime(), **context)


def run_task(ctx: typer.Context, name: str, fields: dict[str, Any], **context: Any) -> tuple[Task, Any]:
    """Run task ``name`` on a request made of ``fields``; returns the task and its result."""
    task, request, task_context = _prepare(ctx, name, fields, context)
    return task, task.run(request, task_context)


def stream_task(ctx: typer.Context, name: str, fields: dict[str, Any], **context: Any) -> tuple[Task, Streamed]:
    """Start a streaming task (generate, chat, ask); iterate the stream, then ``result()``."""
    task, request, task_context = _prepare(ctx, name, fields, context)
    assert task.stream is not None, f"task {name} does not stream"
    return task, task.stream(request, task_context)


def run_files(ctx: typer.Context, name: str, files: list[Path], fields: dict[str, Any], *,
              progress: Callable[[int], None] | None = None, chunk: int = 32
              ) -> Iterator[tuple[Task, Path, Any | str]]:
    """Run a file task (see, hear) on each file through the task's batch runner, a chunk at a time (as the
    server batches concurrent requests). Yields (task, path, result) in order, or (task, path, error) for a
    file that cannot be used: one bad file does not end the run."""
    task = get_task(name)
    assert task.batch is not None and task.input is not None
    runtime = state(ctx).runtime()
    options = {k: v for k, v in fields.items() if v is not None}
    run: Callable[[list[Any]], Sequence[Any]] | None = None
    for start in range(0, len(files), chunk):
        part = files[start:start + chunk]
        requests: list[Any] = []
        for path in part:
            try:
                requests.append(task.parse({**options, task.input: encode_base64(path.read_bytes())}))
            except OSError as exc:
                requests.append(f"{path}: cannot be read ({exc.strerror or exc})")
            except InputError as exc:
                requests.append(f"{path}: {exc}")
        good = [r for r in requests if not isinstance(r, str)]
        if good and run is None:
            run = task.batch.runner(good[0], runtime)
        results = iter(run([item for r in good for item in task.batch.items(r)]) if good and run else [])
        for path, request in zip(part, requests, strict=True):
            if isinstance(request, str):
                yield task, path, request
                continue
            result = next(results)
            error = getattr(result, "error", None)
            yield task, path, f"{path}: {error}" if error else replace(result, source=str(path))
        if progress:
            progress(len(part))


def relay(stream: Streamed, *, echo: bool = True) -> None:
    """Print a stream's text as it comes; Ctrl-C stops this answer only (the command goes on)."""
    iterator = iter(stream)
    try:
        for delta in iterator:
            if delta.text and echo:
                write(delta.text)
    except KeyboardInterrupt:
        if stream.request is not None:
            stream.request.cancel.set()
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # releases the model at once
        if echo:
            write(" [stopped]")


def print_json(task: Task, result: Any, **envelope: Any) -> None:
    """One line of JSON: the task's JSON form, after ``envelope`` keys (which input it was)."""
    print(json.dumps({**envelope, **task.to_json(result)}, ensure_ascii=False), flush=True)


# --- commands generated from request models ---------------------------------------------------------

def _option(field: str, annotation: Any, description: str | None, default: Any) -> tuple[Any, bool, Any]:
    """The type and typer option of one request field, and whether its value is given as JSON (anything
    beyond scalars and lists of them)."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        # One text or a list of texts (interests, texts): a repeatable option gives either.
        lists = [a for a in args if typing.get_origin(a) is list]
        if len(args) == 1 or (lists and len(args) == 2 and str in args):
            chosen = lists[0] if lists else args[0]
            annotation, origin, args = chosen, typing.get_origin(chosen), list(typing.get_args(chosen))
    shown = None if default is None or callable(default) or default is PydanticUndefined else default
    text = (description or "") + (f" (default: {shown})" if shown not in (None, "", [], {}) else "")
    flag = "--" + field.replace("_", "-")
    if annotation is bool:
        return bool | None, False, typer.Option(f"{flag}/--no-{field.replace('_', '-')}", help=text)
    if origin is typing.Literal:
        return str | None, False, typer.Option(flag, help=f"{text} ({', '.join(map(str, args))})")
    if annotation in (int, float, str):
        return annotation | None, False, typer.Option(flag, help=text)
    if origin is list and args and args[0] in (int, float, str):
        return list[args[0]] | None, False, typer.Option(flag, help=f"{text} (repeatable)")  # type: ignore[valid-type]
    return str | None, True, typer.Option(flag, help=f"{text} (JSON)")


def _json_value(field: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        if value.lstrip().startswith(("{", "[")):
            raise InputError(f"--{field.replace('_', '-')}: not valid JSON: {value[:60]}") from None
        return value  # a plain string, where the field also takes text


def command_for(task: Task) -> Callable[..., None]:
    """A CLI command generated from the task's request model (typer reads its signature)."""
    fields = task.request.model_fields
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
    as_json_fields: set[str] = set()
    if task.input is not None:
        what = "a file" if task.file_input else "the text; '-' or nothing reads standard input"
        params.append(inspect.Parameter("input_value", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                        annotation=Annotated[str | None, typer.Argument(
                                            metavar=task.input.upper(), help=what, show_default=False)]))
    for name, info in fields.items():
        if name == task.input:
            continue
        kind, is_json, option = _option(name, info.annotation, info.description,
                                        info.get_default(call_default_factory=False))
        if is_json:
            as_json_fields.add(name)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[kind, option]))
    params.append(inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Annotated[
        bool, typer.Option("--json", help="print the result as JSON")]))

    def command(ctx: typer.Context, input_value: str | None = None, as_json: bool = False, **options: Any) -> None:
        values = {k: (_json_value(k, v) if k in as_json_fields else v) for k, v in options.items()
                  if v is not None and v != []}
        if task.input is not None:
            if task.file_input:
                if not input_value:
                    raise InputError(f"give the {task.input} as a file")
                try:
                    values[task.input] = encode_base64(Path(input_value).read_bytes())
                except OSError as exc:
                    raise InputError(f"cannot read {input_value} ({exc.strerror or exc})") from exc
            else:
                values[task.input] = read_input(input_value)
        _, result = run_task(ctx, task.name, values)
        if as_json or task.render is not None:
            print_json(task, result)
        else:
            _print_plain(task.to_json(result))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__name__ = task.name.replace("-", "_")
    command.__doc__ = task.summary
    return command


def _print_plain(data: Any) -> None:
    if isinstance(data, dict) and isinstance(data.get("text"), str):
        sys.stdout.write(data["text"].rstrip("\n") + "\n")
    else:
        print(json.dumps(data, ensure_ascii=False, indent=2))


def add_task_commands(app: typer.Typer) -> None:
    """A generated command for every task that has no command (or command group) of its own in ``app``."""
    taken = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    taken |= {g.name or "" for g in app.registered_groups}
    for name in registry().names():
        if name in taken:
            continue
        try:
            app.command(name)(command_for(get_task(name)))
        except ImportError:
            continue  # its optional library is missing: the task says so when used, not here
