"""Jinja2 templates and expressions for workflow steps, in a sandbox, failing loudly on missing fields.

- A string with ``{{ … }}`` or ``{% … %}`` is a template, rendered to text; a string that is *only* one
  ``{{ expression }}`` keeps the expression's value (a list stays a list, a number a number), so
  ``labels: "{{ vars.labels }}"`` passes a list to the task.
- ``when`` and ``map`` are bare expressions (``label.label == 'work'``).
- ``env('NAME', 'default')`` reads an environment variable; the ``expand`` filter expands ``~``.
- Undefined names and fields are errors (StrictUndefined): a typo fails the item with a message naming
  the template, rather than silently producing an empty prompt.

The sandbox stops templates from reaching Python internals; workflow files are still the user's own
code-like configuration and should be treated as such.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from plait.errors import MissingDependency
from plait.workflows.errors import TemplateError

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)


def _jinja() -> Any:
    try:
        import jinja2
        import jinja2.sandbox
    except ImportError as exc:
        raise MissingDependency("workflow templates", extra="workflows", package="jinja2") from exc
    return jinja2


def is_template(value: str) -> bool:
    return "{{" in value or "{%" in value or "{#" in value


def to_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an ISO 8601 date or a Unix time") from exc


def _date(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return to_datetime(value).strftime(fmt)


def _words(value: Any, n: int) -> str:
    words = str(value).split()
    return " ".join(words[:n]) + (" …" if len(words) > n else "")


def _fold(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(value)).strip("-.")


def slug(value: Any, length: int = 60) -> str:
    return _fold(value)[:length].strip("-.") or "item"


KEY_SLUG_CHARS = 80


def key_slug(key: str) -> str:
    """An item key as a file name, different for different keys.

    Keys longer than the name allows (a feed entry's URL) are cut, so two would share a file: those end
    with a digest of the whole key. Shorter keys keep the names they always had.
    """
    if len(_fold(key)) <= KEY_SLUG_CHARS:
        return slug(key, KEY_SLUG_CHARS)
    import hashlib

    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:10]
    return f"{slug(key, KEY_SLUG_CHARS - len(digest) - 1)}-{digest}"


class Templates:
    """Compiles each template once (per source string) and renders it with a context mapping."""

    def __init__(self) -> None:
        jinja2 = _jinja()
        self._jinja = jinja2
        self.env = jinja2.sandbox.ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True,
            trim_blocks=True, lstrip_blocks=True)
        self.env.filters.update(
            date=_date, datetime=to_datetime, words=_words, slug=slug,
            fromjson=json.loads, tojson=lambda v, indent=None: json.dumps(v, indent=indent, ensure_ascii=False,
                                                                          default=str),
        )
        # env('NAME', 'default') reads the environment (a bundled workflow's settings); `expand` does ~ only:
        # applied to an item's value, $VAR expansion would let a sender read the environment.
        self.env.globals["env"] = lambda name, default="": os.environ.get(str(name)) or default
        self.env.filters["expand"] = lambda v: os.path.expanduser(str(v))
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _compiled(self, kind: str, source: str) -> Any:
        key = (kind, source)
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        try:
            compiled = self.env.compile_expression(source, undefined_to_none=False) if kind == "expr" \
                else self.env.from_string(source)
        except self._jinja.TemplateSyntaxError as exc:
            raise TemplateError(f"template syntax error: {exc.message} (line {exc.lineno} of "
                                f"{_quote(source)})") from exc
        with self._lock:
            self._cache[key] = compiled
        return compiled

    def check(self, source: str, *, expression: bool = False) -> None:
        """Raise TemplateError if ``source`` does not compile (used when validating a workflow)."""
        if expression:
            self._compiled("expr", source)
            return
        match = _SINGLE.match(source)
        if match:
            self._compiled("expr", match.group("expr"))
        elif is_template(source):
            self._compiled("text", source)

    def evaluate(self, expression: str, context: Mapping[str, Any]) -> Any:
        """The value of a bare expression (``when``, ``map``)."""
        compiled = self._compiled("expr", expression)
        try:
            value = compiled(**context)
            if isinstance(value, self._jinja.Undefined):
                str(value)  # StrictUndefined raises here, naming what is missing
        except self._jinja.UndefinedError as exc:
            raise TemplateError(f"in {_quote(expression)}: {exc.message}; the fields available are "
                                f"{_fields(context)}") from exc
        except TemplateError:
            raise
        except Exception as exc:  # noqa: BLE001 - any error inside a user's expression is the template's
            raise TemplateError(f"in {_quote(expression)}: {type(exc).__name__}: {exc}") from exc
        return value

    def render(self, value: Any, context: Mapping[str, Any]) -> Any:
        """Render every template string inside ``value`` (strings, lists and dicts, recursively)."""
        if isinstance(value, str):
            if not is_template(value):
                return value
            match = _SINGLE.match(value)
            if match:
                return self.evaluate(match.group("expr"), context)
            compiled = self._compiled("text", value)
            try:
                return compiled.render(**context)
            except self._jinja.UndefinedError as exc:
                raise TemplateError(f"in {_quote(value)}: {exc.message}; the fields available are "
                                    f"{_fields(context)}") from exc
            except Exception as exc:  # noqa: BLE001
                raise TemplateError(f"in {_quote(value)}: {type(exc).__name__}: {exc}") from exc
        if isinstance(value, list):
            return [self.render(v, context) for v in value]
        if isinstance(value, dict):
            return {k: self.render(v, context) for k, v in value.items()}
        return value

    def render_text(self, value: Any, context: Mapping[str, Any]) -> str:
        rendered = self.render(value, context)
        return rendered if isinstance(rendered, str) else json.dumps(rendered, ensure_ascii=False, default=str) \
            if isinstance(rendered, dict | list) else "" if rendered is None else str(rendered)


def _quote(source: str) -> str:
    one_line = " ".join(source.split())
    return "'" + (one_line if len(one_line) <= 80 else one_line[:77] + "...") + "'"


def _fields(context: Mapping[str, Any]) -> str:
    names = [k for k in context if k not in ("env",)]
    item = context.get("item")
    if isinstance(item, Mapping):
        names += [f"item.{k}" for k in list(item)[:20]]
    return ", ".join(names)
