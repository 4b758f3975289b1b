"""Loading and checking workflow files: YAML → :class:`~plait.workflows.spec.Workflow`, with every problem
reported as ``FILE:LINE: field: message``.

Three layers of checks, all before any item is read:

1. YAML syntax (and duplicate keys, which YAML silently lets the last one win);
2. the schema (pydantic): kinds of steps, types, unknown keys;
3. meaning: every task, sink and trigger exists and is installed, their options and arguments are
   right, step ids are unique, and every template and expression compiles.

A workflow built in Python goes through layers 2 and 3 (:func:`check_workflow`; the engine calls it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from plait.errors import InputError, MissingDependency, PlaitError
from plait.workflows.errors import Problem, SpecError, TemplateError
from plait.workflows.spec import (
    RESERVED_IDS,
    STEP_TAGS,
    HttpStep,
    MapStep,
    RouteStep,
    SetStep,
    SinkStep,
    TaskStep,
    TemplateStep,
    Workflow,
    walk_steps,
)

Loc = tuple[Any, ...]


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:
        raise MissingDependency("workflow files", extra="workflows", package="PyYAML") from exc
    return yaml


def parse_yaml(text: str, file: str) -> tuple[Any, dict[Loc, int]]:
    """The YAML's data, and the line (1-based) of every mapping key and list element by its path."""
    yaml = _yaml()
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SpecError([Problem(file, mark.line + 1 if mark else None, "",
                                 f"invalid YAML: {exc.problem or exc.context}")]) from exc
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file, None, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), lines, problems, file)
    if problems:
        raise SpecError(problems)
    return data, lines


def _walk(node: Any, path: Loc, lines: dict[Loc, int], problems: list[Problem], file: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if node.id == "mapping":
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                problems.append(Problem(file, key_node.start_mark.line + 1, _dotted((*path, key)),
                                        f"'{key}' is given twice; keep one"))
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, problems, file)
    elif node.id == "sequence":
        for i, child in enumerate(node.value):
            lines[(*path, i)] = child.start_mark.line + 1
            _walk(child, (*path, i), lines, problems, file)


def _dotted(path: Loc) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _locate(loc: Loc, data: Any, lines: dict[Loc, int]) -> tuple[str, int | None]:
    """A pydantic error location as a field path in the file, and the line of the deepest part found."""
    node: Any = data
    found: Loc = ()
    shown: list[Any] = []
    for part in loc:
        if isinstance(node, dict) and part in node:
            node, found = node[part], (*found, part)
            shown.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node, found = node[part], (*found, part)
            shown.append(part)
        elif part in STEP_TAGS or (isinstance(node, dict) and part == node.get("type")):
            continue  # a union's tag, not a key of the file
        else:
            node = None
            shown.append(part)
    return _dotted(tuple(shown)), lines.get(found)


def _message(err: dict[str, Any]) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown key; remove it or check its spelling"
    if err["type"] == "missing":
        return "required, but missing"
    return msg.removeprefix("Value error, ")


def load_workflow(path: str | Path) -> Workflow:
    """Read, validate and check a workflow file; SpecError lists every problem with its line."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"workflow file {p} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read workflow file {p} ({exc})") from exc
    return parse_workflow(text, file=str(p), source=p.resolve())


def parse_workflow(text: str, *, file: str = "<workflow>", source: Path | None = None) -> Workflow:
    data, lines = parse_yaml(text, file)
    if not isinstance(data, dict):
        raise SpecError([Problem(file, 1, "", "a workflow file is a mapping with name, trigger and steps")])
    if "name" not in data and source is not None:
        data["name"] = source.stem  # the file's name, when it does not give one
    try:
        workflow = Workflow.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field, line = _locate(tuple(err["loc"]), data, lines)
            problems.append(Problem(file, line, field, _message(dict(err))))
        raise SpecError(_unique(problems)) from exc
    workflow._source = source
    problems = list(check(workflow, file, data, lines))
    if problems:
        raise SpecError(problems)
    return workflow


def check_workflow(workflow: Workflow) -> None:
    """Layer 3 for a workflow built in Python (or already loaded: then it is quick and finds nothing)."""
    file = str(workflow.source) if workflow.source else "<workflow>"
    data = workflow.model_dump(mode="json", by_alias=True, exclude_none=True)
    problems = list(check(workflow, file, data, {}))
    if problems:
        raise SpecError(problems)


def _unique(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for p in problems:
        if (p.line, p.field, p.message) not in seen:
            seen.add((p.line, p.field, p.message))
            out.append(p)
    return out


def check(workflow: Workflow, file: str, data: Any, lines: dict[Loc, int]) -> Iterator[Problem]:
    from plait.workflows.sinks import sink_class
    from plait.workflows.steps import check_task, check_task_arguments
    from plait.workflows.templates import Templates
    from plait.workflows.triggers import trigger_class

    def problem(loc: Loc, message: str) -> Problem:
        # The loc may name keys the file does not have (a default filled in): point at the nearest one.
        field = _dotted(loc)
        line = None
        for cut in range(len(loc), -1, -1):
            if loc[:cut] in lines:
                line = lines[loc[:cut]]
                break
        return Problem(file, line, field, message)

    # The trigger.
    try:
        cls = trigger_class(workflow.trigger.type)
    except (PlaitError, ImportError) as exc:
        yield problem(("trigger", "type"), str(exc))
    else:
        try:
            cls.Options.model_validate(workflow.trigger.options)
        except ValidationError as exc:
            for err in exc.errors():
                yield problem(("trigger", *err["loc"]), _message(dict(err)))

    templates: Templates | None
    try:
        templates = Templates()
    except MissingDependency as exc:
        yield problem(("steps",), str(exc))
        templates = None

    def compiles(loc: Loc, value: Any, *, expression: bool = False) -> Iterator[Problem]:
        if templates is None:
            return
        if isinstance(value, str):
            try:
                templates.check(value, expression=expression)
            except TemplateError as exc:
                yield problem(loc, str(exc))
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from compiles((*loc, k), v)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield from compiles((*loc, i), v)

    ids: dict[str, Loc] = {}
    for loc, step in walk_steps(workflow.steps):
        sid = step.step_id
        if sid in ids:
            yield problem((*loc, "id"), f"step id '{sid}' is used twice (also at {_dotted(ids[sid])}); ids must "
                                        "be unique")
        ids.setdefault(sid, loc)
        if sid in RESERVED_IDS:
            yield problem((*loc, "id"), f"'{sid}' is a reserved name in templates; choose another id")
        if step.when is not None:
            yield from compiles((*loc, "when"), step.when, expression=True)
        if isinstance(step, TaskStep):
            try:
                check_task(step.task)
                for arg, message in check_task_arguments(step.task, step.with_):
                    yield problem((*loc, "with", arg), message)
            except (PlaitError, ImportError) as exc:
                yield problem((*loc, "task"), str(exc))
            yield from compiles((*loc, "with"), step.with_)
        elif isinstance(step, SinkStep):
            try:
                sink = sink_class(step.sink)
            except (PlaitError, ImportError) as exc:
                yield problem((*loc, "sink"), str(exc))
            else:
                try:
                    sink.Options.model_validate(step.with_)
                except ValidationError as exc:
                    for err in exc.errors():
                        yield problem((*loc, "with", *err["loc"]), _message(dict(err)))
            yield from compiles((*loc, "with"), step.with_)
        elif isinstance(step, TemplateStep):
            yield from compiles((*loc, "template"), step.template)
        elif isinstance(step, SetStep):
            yield from compiles((*loc, "set"), step.set)
        elif isinstance(step, HttpStep):
            yield from compiles((*loc, "http"), step.http.model_dump(by_alias=True, exclude_none=True))
        elif isinstance(step, MapStep):
            yield from compiles((*loc, "map"), step.map, expression=True)
            if step.as_ in RESERVED_IDS - {"element"} or step.as_ in ids:
                yield problem((*loc, "as"), f"'{step.as_}' is already a name in templates; choose another")
        elif isinstance(step, RouteStep):
            for b, branch in enumerate(step.route):
                if branch.when is not None:
                    yield from compiles((*loc, "route", b, "when"), branch.when, expression=True)
                elif b != len(step.route) - 1:
                    yield problem((*loc, "route", b), "a branch without `when` (the default) must be the last; "
                                                      "the branches after it could never run")
