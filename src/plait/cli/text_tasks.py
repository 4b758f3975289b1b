"""`plait summarize`, `plait extract` and `plait sentiment`: text tasks over files, folders or stdin.

Each command reads its inputs with plait's readers (any format they know; a mailbox gives one input per
message), calls one task function per document, and prints text or, with --json, one JSON object per
document. Many inputs get a progress bar; an input that cannot be read is reported and skipped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from plait.cli.batch import progress
from plait.cli.tasks import print_json, run_task
from plait.errors import InputError, PlaitError

if TYPE_CHECKING:
    from plait.readers.document import Document

Inputs = Annotated[list[Path] | None, typer.Argument(
    help="files or folders to read (txt, md, html, pdf, docx, eml, mbox, Maildir, csv, json); "
         "'-' or nothing reads standard input", show_default=False)]
TextOpt = Annotated[str | None, typer.Option("--text", "-t", help="use this text instead of files")]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON object per document")]


def register(app: typer.Typer) -> None:
    app.command()(summarize)
    app.command()(extract)
    app.command()(sentiment)


# --- inputs -----------------------------------------------------------------------------------------

def collect(paths: list[Path] | None, text: str | None) -> list[Path | str]:
    """What to read: paths (folders expanded to the readable files in them), or one literal text."""
    from plait.readers import can_read
    from plait.readers.walk import readable_files

    if text is not None:
        if paths:
            raise typer.BadParameter("give files or --text, not both")
        return [text]
    if not paths:
        if sys.stdin.isatty():
            raise typer.BadParameter("give files, --text, or text on standard input")
        return [Path("-")]
    out: list[Path | str] = []
    for path in paths:
        if path.is_dir() and not can_read(path):  # a plain folder: every readable file in it
            found = readable_files(path)
            if not found:
                raise InputError(f"{path} holds no files plait can read")
            out.extend(found)
        else:
            out.append(path)
    return out


def documents(sources: list[Path | str]) -> Iterator[Document | PlaitError]:
    """Documents of each source in order; a source that cannot be read yields its error instead."""
    from plait.readers import read_documents
    from plait.readers.document import Document
    from plait.readers.text import decode_bytes

    for source in sources:
        if isinstance(source, str):
            yield Document(source="text", kind="txt", text=source)
        elif str(source) == "-":
            text = decode_bytes(sys.stdin.buffer.read(), name="standard input")
            yield Document(source="stdin", kind="txt", text=text)
        else:
            try:
                yield from read_documents(source)
            except PlaitError as exc:
                yield exc


def run_each(ctx: typer.Context, sources: list[Path | str], label: str, task: str, fields: dict[str, Any],
             show: Callable[[dict[str, Any], bool], None], as_json: bool) -> None:
    """Run ``task`` on every document (its text in the request's ``text``, the document beside it); print
    each result with ``show`` (or as the task's JSON, after the input's source and title) as it comes."""
    docs = list(documents(sources))
    single = len(docs) == 1
    if single and isinstance(docs[0], PlaitError):
        raise docs[0]
    failed = 0
    with progress(len(docs), label) as advance:
        for item in docs:
            if isinstance(item, PlaitError):
                failed += 1
                print(f"plait: error: {item}", file=sys.stderr)
                advance(1)
                continue
            try:
                definition, result = run_task(ctx, task, {**fields, "text": item.text}, document=item)
            except InputError as exc:
                if single:
                    raise
                failed += 1
                print(f"plait: error: {item.source}: {exc}", file=sys.stderr)
                if as_json:
                    print(json.dumps({"source": item.source, "error": str(exc)}, ensure_ascii=False))
                advance(1)
                continue
            # Which input a result is for, when it came from a file (a literal text needs no name).
            envelope = {} if item.source in ("text", "stdin") else {"source": item.source, "title": item.title}
            if as_json:
                print_json(definition, result, **envelope)
            else:
                show({**envelope, **definition.to_json(result)}, single)
            advance(1)
    if failed:
        raise InputError(f"{failed} of {len(docs)} inputs could not be used (see above)")


def _heading(result: dict[str, Any], single: bool) -> None:
    if not single and result.get("source"):
        print(f"== {result['source']}" + (f" ({result['title']})" if result.get("title") else ""))


# --- summarize --------------------------------------------------------------------------------------

def summarize(
    ctx: typer.Context,
    inputs: Inputs = None,
    text: TextOpt = None,
    method: Annotated[str, typer.Option(
        "--method", help="extractive (chosen sentences; fast, faithful) or abstractive (written by the chat "
                         "model)")] = "extractive",
    abstractive: Annotated[bool, typer.Option("--abstractive", "-a",
                                              help="shorthand for --method abstractive")] = False,
    sentences: Annotated[int | None, typer.Option("--sentences", "-s",
                                                  help="at most this many sentences (or bullets)")] = None,
    words: Annotated[int | None, typer.Option("--words", "-w", help="at most this many words")] = None,
    bullets: Annotated[bool, typer.Option("--bullets", "-b", help="a bulleted list")] = False,
    one_line: Annotated[bool, typer.Option("--one-line", "-1", help="a single short line")] = False,
    model: Annotated[str | None, typer.Option(
        "--model", "-m", help="embedder (extractive) or chat model (abstractive); default from settings")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Summarise documents: a paragraph (3 sentences), --bullets (5), or --one-line; --sentences/--words cap it."""
    if bullets and one_line:
        raise typer.BadParameter("choose --bullets or --one-line, not both")
    style = "bullets" if bullets else "one-line" if one_line else "paragraph"
    chosen = "abstractive" if abstractive else method
    if chosen not in ("extractive", "abstractive"):
        raise typer.BadParameter("--method is extractive or abstractive")
    def show(result: dict[str, Any], single: bool) -> None:
        _heading(result, single)
        print(result["text"])
        if not single:
            print()

    fields = {"method": chosen, "style": style, "sentences": sentences, "words": words, "model": model}
    run_each(ctx, collect(inputs, text), f"summarising ({chosen})", "summarize", fields, show, as_json)


# --- extract ----------------------------------------------------------------------------------------

def extract(
    ctx: typer.Context,
    inputs: Inputs = None,
    text: TextOpt = None,
    kinds: Annotated[list[str] | None, typer.Option(
        "--kind", "-k", help="entities, dates, contacts, amounts or actions (repeatable; default: all)")] = None,
    schema: Annotated[str | None, typer.Option(
        "--schema", help="fill this JSON Schema (a file, or the JSON itself) with the chat model")] = None,
    instructions: Annotated[str | None, typer.Option(help="extra guidance for --schema extraction")] = None,
    labels: Annotated[list[str] | None, typer.Option(
        "--label", help="only these entity labels (PERSON, ORG, GPE, DATE, MONEY…; repeatable)")] = None,
    reference: Annotated[str | None, typer.Option(
        help="resolve relative dates ('next Friday') from this date (ISO 8601; default: the "
             "document's date, else now)")] = None,
    prefer: Annotated[str | None, typer.Option(
        help="which way an ambiguous date like 'Friday' goes: past, future or current_period "
             "(default: future for mail, else current_period)")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="chat model for --schema")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Extract entities, dates (ISO 8601), contacts, amounts and action items, or fill a JSON schema."""
    from plait.tasks.extract import KINDS

    if prefer not in (None, "past", "future", "current_period"):
        raise typer.BadParameter("past, future or current_period", param_hint="--prefer")
    for k in kinds or []:
        if k not in KINDS:
            raise typer.BadParameter(f"'{k}' is not one of {', '.join(KINDS)}", param_hint="--kind")
    if schema is not None and kinds:
        raise typer.BadParameter("--schema and --kind are separate modes; give one")
    fields = {"kinds": kinds, "labels": labels, "reference": _reference(reference), "prefer": prefer,
              "json_schema": load_schema(schema) if schema is not None else None, "instructions": instructions,
              "model": model}
    show = _show_structured if schema is not None else _show_extraction
    run_each(ctx, collect(inputs, text), "extracting", "extract", fields, show, as_json)


def _show_structured(result: dict[str, Any], single: bool) -> None:
    _heading(result, single)
    if result["truncated"]:
        print(f"plait: note: the text is longer than {result['model']}'s context; only its start was read",
              file=sys.stderr)
    print(json.dumps(result["data"], ensure_ascii=False, indent=2))


def load_schema(value: str) -> dict[str, Any]:
    """A JSON Schema from a file path or from the JSON text itself."""
    path = Path(value)
    source = value
    if not value.lstrip().startswith("{"):
        from plait.readers.text import read_text

        source = read_text(path)
    try:
        schema = json.loads(source)
    except json.JSONDecodeError as exc:
        raise InputError(f"the schema is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") \
            from exc
    if not isinstance(schema, dict):
        raise InputError("the schema must be a JSON object (a JSON Schema)")
    return schema


def _reference(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("give an ISO 8601 date, e.g. 2024-03-05 or 2024-03-05T09:00",
                                 param_hint="--reference") from exc


def _show_extraction(result: dict[str, Any], single: bool) -> None:
    _heading(result, single)
    for kind in result["kinds"]:
        items = result[kind]
        print(f"{kind}:" + ("" if items else " none"))
        for item in items:
            print(f"  {_line(kind, item)}")
    if not single:
        print()


def _line(kind: str, item: dict[str, Any]) -> str:
    if kind == "entities":
        return f"{item['label']:<9} {item['text']}"
    if kind == "dates":
        return f"{item['iso']:<17} {item['text']}"
    if kind == "contacts":
        return "  ".join(str(item[k]) for k in ("name", "email", "phone", "organization") if item.get(k))
    if kind == "amounts":
        value = "" if item["value"] is None else f"{item['value']:,.10g}"
        unit = item.get("currency") or item.get("unit") or ("%" if item["kind"] == "percent" else "")
        return f"{item['kind']:<8} {value} {unit}".rstrip() + f"   ({item['text']})"
    extras = ", ".join(f"{k}: {item[k]}" for k in ("owner", "due") if item.get(k))
    return item["text"] + (f"  [{extras}]" if extras else "")


# --- sentiment --------------------------------------------------------------------------------------

def sentiment(
    ctx: typer.Context,
    inputs: Inputs = None,
    text: TextOpt = None,
    method: Annotated[str | None, typer.Option(
        "--method", help="embedding (nearest labelled prototype with the embedder; the default, more accurate) "
        "or vader (lexicon; fastest)")] = None,
    per_sentence: Annotated[bool, typer.Option("--sentences", "-s", help="also score each sentence")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="embedder for --method embedding")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sentiment of documents: positive, negative or neutral, with a score from -1 to 1."""
    if method not in (None, "vader", "embedding"):
        raise typer.BadParameter("--method is embedding or vader")

    def show(result: dict[str, Any], single: bool) -> None:
        where = "" if single or not result.get("source") else f"  {result['source']}"
        print(f"{result['label']:<8} {result['score']:+.2f}{where}")
        if per_sentence:
            for x in result["sentences"]:
                print(f"  {x['label']:<8} {x['score']:+.2f}  {x['text']}")

    options = {"model": model} | ({"method": method} if method else {})
    run_each(ctx, collect(inputs, text), f"scoring sentiment ({method or 'embedding'})", "sentiment",
             options, show, as_json)
