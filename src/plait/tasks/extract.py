"""Extraction: named entities and the built-in extractors (dates, contacts, amounts, action items), and
structured extraction into a JSON schema the user gives.

Structured extraction asks the chat model for JSON under grammar-constrained decoding: the model can
only produce text that parses and has the schema's shape. Before compiling the schema to a grammar,
plait bounds it (a longest string, a largest array, no extra keys where the schema does not ask for
them), because a small model left unbounded can repeat a phrase inside a string until it runs out of
tokens, and cut-off JSON does not parse. The result is then validated against the user's own schema
(with jsonschema, and the pydantic model when one was given) so what the grammar cannot express
(numeric ranges, formats) is still checked.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from plait.errors import InputError, MissingDependency, ModelOutputError
from plait.models.base import GenerationOptions, Message, TextGenerator
from plait.readers.document import Document
from plait.runtime import Runtime, get_runtime
from plait.tasks.extractors import (
    ActionItem,
    Amount,
    Contact,
    DateMention,
    Entity,
    action_items,
    amounts,
    contacts,
    dates,
    entities,
)
from plait.tasks.nlp import parse
from plait.tasks.registry import MAX_TEXT_CHARS, Task, TaskContext, TaskRequest

Kind = Literal["entities", "dates", "contacts", "amounts", "actions"]
Prefer = Literal["past", "future", "current_period"]
KINDS: tuple[Kind, ...] = ("entities", "dates", "contacts", "amounts", "actions")

MAX_STRING = 200  # characters, for strings the schema leaves unbounded
MAX_ITEMS = 12  # items, for arrays the schema leaves unbounded
ATTEMPTS = 2


@dataclass(frozen=True)
class Extraction:
    """What the built-in extractors found; a kind not asked for is an empty tuple."""

    entities: tuple[Entity, ...] = ()
    dates: tuple[DateMention, ...] = ()
    contacts: tuple[Contact, ...] = ()
    amounts: tuple[Amount, ...] = ()
    actions: tuple[ActionItem, ...] = ()
    kinds: tuple[str, ...] = field(default=KINDS)


def extract(text: str | Document, kinds: Iterable[Kind] | None = None, *,
            reference: datetime | None = None, prefer: Prefer | None = None,
            labels: Iterable[str] | None = None) -> Extraction:
    """Run the built-in extractors (all of them, or ``kinds``) over ``text``.

    Relative dates ("Friday") resolve against ``reference``: by default a Document's own date (a mail's
    Date header), else now; ``prefer`` says which way an ambiguous one goes: "future" by default for
    mail (messages speak of what is to come), else "current_period" (a weekday means this week's).
    ``labels`` limits entities to some spaCy labels (PERSON, ORG…).
    """
    wanted = tuple(kinds) if kinds else KINDS
    unknown = [k for k in wanted if k not in KINDS]
    if unknown:
        raise InputError(f"unknown extractor(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    body, reference = _text_and_reference(text, reference)
    if prefer is None:
        prefer = "future" if isinstance(text, Document) and text.kind == "email" else "current_period"
    if not body.strip():
        raise InputError("nothing to extract from: the text is empty")
    parsed = parse(body)
    found_contacts: list[Contact] = []
    if "contacts" in wanted:
        found_contacts = _merge_contacts(_header_contacts(text), contacts(parsed))
    return Extraction(
        entities=tuple(entities(parsed, labels)) if "entities" in wanted else (),
        dates=tuple(dates(parsed, reference=reference, prefer=prefer)) if "dates" in wanted else (),
        contacts=tuple(found_contacts),
        amounts=tuple(amounts(parsed)) if "amounts" in wanted else (),
        actions=tuple(action_items(parsed, reference=reference)) if "actions" in wanted else (),
        kinds=wanted,
    )


def _text_and_reference(text: str | Document, reference: datetime | None) -> tuple[str, datetime | None]:
    if isinstance(text, Document):
        if reference is None and text.metadata.get("date"):
            try:
                reference = datetime.fromisoformat(text.metadata["date"])
            except ValueError:
                reference = None
        if text.kind == "email" and text.sections:
            # What the sender wrote: header lines confuse the parser (their facts are in the metadata), and
            # actions and dates of the quoted history are someone else's, of another day.
            from plait.readers.mail import written_text

            return written_text(text), reference
        return text.text, reference
    if not isinstance(text, str):
        raise InputError(f"extract takes a string or a Document, not {type(text).__name__}")
    return text, reference


def _header_contacts(text: str | Document) -> list[Contact]:
    """The people a mail is from and to, from its headers (already "Name <address>" in the metadata)."""
    if not isinstance(text, Document) or text.kind != "email":
        return []
    from email.utils import getaddresses

    fields = [text.metadata.get("sender", ""), text.metadata.get("recipients", "")]
    return [Contact(name=name or None, email=address or None)
            for name, address in getaddresses([f for f in fields if f]) if name or address]


def _merge_contacts(first: list[Contact], second: list[Contact]) -> list[Contact]:
    out = list(first)
    emails = {c.email.lower() for c in first if c.email}
    names = {c.name.lower() for c in first if c.name}
    for c in second:
        if (c.email and c.email.lower() in emails) or (not c.email and c.name and c.name.lower() in names):
            continue
        out.append(c)
    return out


# --- structured extraction into a JSON schema -------------------------------------------------------

@dataclass(frozen=True)
class Structured:
    data: Any  # the parsed JSON (a dict for an object schema), valid against the schema
    model: str
    attempts: int
    truncated: bool  # the text was longer than the model's context and only its start was read
    raw: str


SYSTEM = ("You extract information from a text into JSON that follows a JSON schema. Copy names, numbers "
          "and dates exactly as the text gives them, and list each item once. When the text does not say, "
          "use null, an empty string or an empty list. Answer with the JSON only.")


def extract_json(text: str | Document, schema: dict[str, Any] | type[BaseModel], *,
                 instructions: str | None = None, model: str | TextGenerator | None = None,
                 runtime: Runtime | None = None, attempts: int = ATTEMPTS) -> Structured:
    """Fill ``schema`` (a JSON Schema dict, or a pydantic model class) from ``text`` with the chat model.

    Raises InputError for an invalid schema or empty text, and ModelOutputError when the model's output
    still does not validate after ``attempts`` tries.
    """
    json_schema, pydantic_model = _schema(schema)
    validator = _validator(json_schema)
    bounded = bound_schema(json_schema)
    if isinstance(text, Document):
        from plait.readers.mail import written_text

        body = written_text(text) if text.kind == "email" and text.sections else text.text
    else:
        body = text
    if not isinstance(body, str):
        raise InputError(f"extract takes a string or a Document, not {type(body).__name__}")
    if not body.strip():
        raise InputError("nothing to extract from: the text is empty")
    rt = runtime or get_runtime()
    gen = model if isinstance(model, TextGenerator) else rt.model(model or rt.settings.chat_model, TextGenerator)

    fields = describe_schema(json_schema)
    window = gen.context_length or rt.settings.context_length
    answer_tokens = min(1024, max(128, window // 3))
    overhead = gen.count_tokens(SYSTEM + fields + (instructions or "")) + 48
    room = window - answer_tokens - overhead
    if room < 64:
        raise InputError(f"the schema is too large for {gen.spec.name}'s {window}-token context; simplify it")
    body, truncated = _fit(body, gen, room)
    # Text first, the fields last: small models follow the instruction nearest the answer best, and
    # read a plain list of fields better than raw JSON Schema (the grammar enforces the shape anyway).
    user = f"Text:\n{body}\n\nFrom the text above, fill in these fields as JSON:\n{fields}"
    if instructions:
        user += f"\n\n{instructions}"
    messages = [Message("system", SYSTEM), Message("user", user)]

    problems: list[str] = []
    for attempt in range(1, attempts + 1):
        options = GenerationOptions(max_tokens=answer_tokens, temperature=0.0 if attempt == 1 else 0.4,
                                    seed=attempt, json_schema=bounded)
        try:
            raw = gen.chat(messages, options).text
        except (ValueError, RuntimeError) as exc:  # the grammar compiler rejects the schema
            raise InputError(f"the schema cannot be turned into a decoding grammar ({exc}); "
                             "use plain types, properties, arrays, enums and $defs") from exc
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(f"not JSON ({exc.msg})")
            continue
        error = _first_error(validator, data)
        if error is None and pydantic_model is not None:
            try:
                data = pydantic_model.model_validate(data).model_dump(mode="json")
            except PydanticValidationError as exc:
                error = str(exc.errors()[0]["msg"])
        if error is None:
            return Structured(data, gen.spec.name, attempt, truncated, raw)
        problems.append(error)
    raise ModelOutputError(f"{gen.spec.name} gave no valid JSON for the schema in {attempts} tries "
                       f"({'; '.join(problems)}); try a larger model or a simpler schema")


def describe_schema(schema: dict[str, Any]) -> str:
    """The schema's fields as a short list a small model can follow: name, type, description."""
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    lines = []
    for name, sub in props.items():
        sub = sub if isinstance(sub, dict) else {}
        line = f"- {name}: {_type_words(sub, schema)}"
        if sub.get("description"):
            line += f"; {sub['description']}"
        lines.append(line)
    return "\n".join(lines)


def _type_words(node: dict[str, Any], root: dict[str, Any]) -> str:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node = target if isinstance(target, dict) else {}
    if "enum" in node:
        return "one of " + ", ".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " or ".join(_type_words(n, root) for n in node[key] if isinstance(n, dict))
    kind = node.get("type", "any value")
    if isinstance(kind, list):
        return " or ".join("null" if k == "null" else str(k) for k in kind)
    if kind == "array":
        items = node.get("items")
        return f"list of {_type_words(items, root) if isinstance(items, dict) else 'values'}"
    if kind == "object" and isinstance(node.get("properties"), dict):
        return "object with " + ", ".join(node["properties"])
    if kind == "string" and node.get("format"):
        return f"string ({node['format']})"
    return str(kind)


def _schema(schema: dict[str, Any] | type[BaseModel]) -> tuple[dict[str, Any], type[BaseModel] | None]:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema(), schema
    if not isinstance(schema, dict):
        raise InputError(f"a schema is a JSON Schema object or a pydantic model, not {type(schema).__name__}")
    return schema, None


def _validator(schema: dict[str, Any]) -> Any:
    try:
        import jsonschema
    except ImportError as exc:
        raise MissingDependency("structured extraction", extra="tasks", package="jsonschema") from exc
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise InputError(f"the JSON schema is not valid at {where}: {exc.message}") from exc
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _first_error(validator: Any, data: Any) -> str | None:
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if not errors:
        return None
    e = errors[0]
    where = "/".join(str(p) for p in e.path) or "top level"
    return f"{where}: {e.message}"


def bound_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that only accepts bounded output: strings without a length, enum, pattern or
    format get ``maxLength``, arrays get ``maxItems``, objects with properties get no extra keys. Every
    value it accepts is accepted by the original."""
    out = copy.deepcopy(schema)
    _bound(out)
    return out


def _bound(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _bound(item)
        return
    if not isinstance(node, dict):
        return
    types = node.get("type")
    type_set = set(types) if isinstance(types, list) else {types}
    free_string = not any(k in node for k in ("enum", "const", "pattern", "format", "maxLength"))
    if "string" in type_set and free_string:
        node["maxLength"] = max(MAX_STRING, int(node.get("minLength", 0)))
    if "array" in type_set and "maxItems" not in node and "prefixItems" not in node:
        node["maxItems"] = max(MAX_ITEMS, int(node.get("minItems", 0)))
    if "properties" in node and "additionalProperties" not in node and "patternProperties" not in node:
        node["additionalProperties"] = False
    for key, value in node.items():
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            if isinstance(value, dict):
                for sub in value.values():
                    _bound(sub)
        elif key in ("items", "prefixItems", "anyOf", "oneOf", "allOf", "additionalProperties"):
            _bound(value)


def _fit(text: str, gen: TextGenerator, room: int) -> tuple[str, bool]:
    """The text, or as much of its start as fits in ``room`` tokens."""
    # No token is longer than ~8 characters in practice: anything past that cannot fit.
    clipped = text[: room * 8]
    if len(clipped) == len(text) and gen.count_tokens(text) <= room:
        return text, False
    text = clipped
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits: the tokenizer is fast, the text can be long
        mid = (low + high + 1) // 2
        if gen.count_tokens(text[:mid]) <= room:
            low = mid
        else:
            high = mid - 1
    cut = text.rfind(" ", 0, low)
    return text[: cut if cut > low // 2 else low], True


# --- the task -----------------------------------------------------------------------------------------

class ExtractRequest(TaskRequest):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    kinds: list[Kind] | None = Field(None, description=f"extractors to run (default all: {', '.join(KINDS)})")
    reference: datetime | None = Field(None, description="resolve relative dates ('Friday') from this moment "
                                       "(default: a mail's own date, else now)")
    prefer: Prefer | None = Field(None, description="which way an ambiguous date goes (default: future for "
                                  "mail, else current_period)")
    labels: list[str] | None = Field(None, description="only these entity labels (PERSON, ORG…)")
    json_schema: dict[str, Any] | None = Field(
        None, description="fill this JSON schema with the chat model instead of running the extractors")
    instructions: str | None = Field(None, max_length=2000, description="extra guidance for schema extraction")
    model: str | None = Field(None, description="chat model for schema extraction")

    @field_validator("reference", mode="before")
    @classmethod
    def _iso(cls, value: Any) -> Any:
        # pydantic would also take a number as a Unix time; plait documents an ISO 8601 string.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("give an ISO 8601 date-time, e.g. 2026-03-05T09:00:00")
        return value

    @model_validator(mode="after")
    def _one_mode(self) -> ExtractRequest:
        if self.json_schema is not None and self.kinds:
            raise ValueError("json_schema and kinds are separate modes; give one")
        return self


def _run(request: ExtractRequest, ctx: TaskContext) -> Extraction | Structured:
    text = ctx.document or request.text
    if request.json_schema is None:
        return extract(text, request.kinds, reference=request.reference, prefer=request.prefer,
                       labels=request.labels)
    return extract_json(text, request.json_schema, instructions=request.instructions, model=request.model,
                        runtime=ctx.runtime)


TASK = Task(
    name="extract", summary="Entities, dates, contacts, amounts and action items; or a JSON schema filled in",
    request=ExtractRequest, result=Extraction | Structured, run=_run, reads_documents=True,
    models=lambda request, settings: [request.model or settings.chat_model] if request.json_schema else [],
)
