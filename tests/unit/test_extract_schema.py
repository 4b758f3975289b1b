"""Structured extraction without a real model: schema bounding and description, validation, retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from plait.errors import BackendError, InputError
from plait.models.base import Delta, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.tasks.extract import bound_schema, describe_schema, extract_json

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "who wrote it"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "year": {"type": "integer", "minimum": 1900},
        "tone": {"enum": ["positive", "negative"]},
    },
    "required": ["name", "year"],
}


class Scripted(TextGenerator):
    """Answers with the next scripted reply and records the requests it got."""

    context_length = 512

    def __init__(self, replies: list[str]) -> None:
        self.spec = ModelSpec(name="scripted", backend="fake", capabilities=("chat",), source="fake")
        self.replies = replies
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        self.requests.append(request)
        yield Delta(self.replies.pop(0))
        yield Delta("", finish_reason="stop", usage=Usage(1, 1))


def test_bound_schema_only_narrows() -> None:
    bounded = bound_schema(SCHEMA)
    props = bounded["properties"]
    assert props["name"]["maxLength"] == 200 and props["tags"]["maxItems"] == 12
    assert props["tags"]["items"]["maxLength"] == 200
    assert "maxLength" not in props["tone"] and bounded["additionalProperties"] is False
    assert "maxLength" not in SCHEMA["properties"]["name"]  # the user's schema is untouched
    nested = bound_schema({"$defs": {"P": {"type": "object", "properties": {"x": {"type": ["string", "null"]}}}},
                           "type": "array", "items": {"$ref": "#/$defs/P"}, "minItems": 20})
    assert nested["maxItems"] == 20 and nested["$defs"]["P"]["properties"]["x"]["maxLength"] == 200


def test_describe_schema_reads_like_a_form() -> None:
    assert describe_schema(SCHEMA).splitlines() == [
        "- name: string; who wrote it", "- tags: list of string", "- year: integer",
        '- tone: one of "positive", "negative"']


def test_valid_output_is_returned_and_the_grammar_is_bounded() -> None:
    gen = Scripted(['{"name": "Anna", "year": 2001, "tags": ["a"]}'])
    result = extract_json("Anna wrote it in 2001.", SCHEMA, model=gen)
    assert result.data == {"name": "Anna", "year": 2001, "tags": ["a"]} and result.attempts == 1
    options = gen.requests[0].options
    assert options.json_schema == bound_schema(SCHEMA) and options.temperature == 0.0
    assert "Anna wrote it in 2001." in gen.requests[0].messages[-1].content  # type: ignore[index]


def test_invalid_output_is_retried_then_reported() -> None:
    gen = Scripted(['{"name": "Anna", "year": 1200}', '{"name": "Anna", "year": 2001}'])
    assert extract_json("text", SCHEMA, model=gen).attempts == 2  # minimum is checked after the grammar
    gen = Scripted(['{"name": "Anna"', '{"name": "Anna", "year": "soon"}'])
    with pytest.raises(BackendError, match="no valid JSON.*not JSON.*year"):
        extract_json("text", SCHEMA, model=gen)


def test_pydantic_model_schema() -> None:
    class Invoice(BaseModel):
        number: str
        total: float

    gen = Scripted(['{"number": "A-1", "total": 12}'])
    result = extract_json("Invoice A-1, total 12 EUR", Invoice, model=gen)
    assert result.data == {"number": "A-1", "total": 12.0}


def test_bad_schema_and_text() -> None:
    gen = Scripted([])
    with pytest.raises(InputError, match="not valid"):
        extract_json("text", {"type": "objekt"}, model=gen)
    with pytest.raises(InputError, match="empty"):
        extract_json("  ", SCHEMA, model=gen)
    with pytest.raises(InputError, match="JSON Schema object"):
        extract_json("text", ["not", "a", "schema"], model=gen)  # type: ignore[arg-type]


def test_long_text_is_cut_to_the_context() -> None:
    gen = Scripted(['{"name": "x", "year": 2000}'])
    result = extract_json("word " * 5000, SCHEMA, model=gen)
    assert result.truncated
    prompt = gen.requests[0].messages[-1].content  # type: ignore[index]
    assert gen.count_tokens(prompt) < 512


def test_llama_cpp_json_grammar_excludes_control_characters() -> None:
    pytest.importorskip("xllamacpp")
    import json

    import xllamacpp

    grammar = xllamacpp.json_schema_to_grammar(json.dumps(bound_schema(SCHEMA)))
    if grammar.startswith("%llguidance"):
        # llguidance's JSON mode follows the JSON spec: strings hold no raw control characters.
        assert "%json" in grammar and '"required"' in grammar
    else:
        char_rule = next(line for line in grammar.splitlines() if line.startswith("char "))
        assert "\\x00-\\x1F" in char_rule  # a raw newline inside a string would not parse as JSON
