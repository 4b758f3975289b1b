"""`plait search` and `plait ask`: find passages in the personal index, or answer from them."""

from __future__ import annotations

import sys
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from plait.cli.common import err_console, write
from plait.cli.tasks import print_json, relay, run_task, stream_task

if TYPE_CHECKING:
    from plait.index.filters import SearchFilters

CollectionOpt = Annotated[list[str] | None, typer.Option("--collection", "-c",
                                                         help="only this collection (repeatable)")]
PathOpt = Annotated[str | None, typer.Option("--path", help="glob on file paths, e.g. '*/notes/*' or '*.pdf'")]
KindOpt = Annotated[list[str] | None, typer.Option("--type", "-t", help="document kind: txt, md, pdf, email… "
                                                  "(repeatable)")]
AfterOpt = Annotated[str | None, typer.Option("--after", help="dated on or after YYYY-MM-DD")]
BeforeOpt = Annotated[str | None, typer.Option("--before", help="dated on or before YYYY-MM-DD")]
SenderOpt = Annotated[str | None, typer.Option("--sender", "--from", help="part of the sender's or author's name")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    app.command()(search)
    app.command()(ask)


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"'{value}' is not a date like 2024-03-31", param_hint=option) from exc


def _filters(collection: list[str] | None, path: str | None, kind: list[str] | None, after: str | None,
             before: str | None, sender: str | None) -> SearchFilters:
    from plait.index.filters import make_filters

    return make_filters(collections=tuple(collection or ()), path=path, kinds=tuple(kind or ()),
                        after=_day(after, "--after"), before=_day(before, "--before"), sender=sender)


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="words or a question; \"quoted phrases\" rank first where they "
                                              "appear as they are")],
    k: Annotated[int, typer.Option("-k", "--limit", help="number of results")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid (words and meaning), keyword (BM25) or vector")] = "hybrid",
    passages: Annotated[bool, typer.Option("--passages", help="list passages, not one result per document")] = False,
    mmr: Annotated[float | None, typer.Option(help="vary the results: λ from 0 (varied) to 1 (relevant)")] = None,
    rerank: Annotated[bool, typer.Option(help="for a question, put the results that answer it first")] = True,
    collection: CollectionOpt = None, path: PathOpt = None, kind: KindOpt = None, after: AfterOpt = None,
    before: BeforeOpt = None, sender: SenderOpt = None, as_json: JsonOpt = False,
) -> None:
    """Search the personal index (add folders first with `plait index add`)."""
    filters = _filters(collection, path, kind, after, before, sender)
    task, results = run_task(ctx, "search", {"query": query, "k": k, "mode": mode, "filters": filters,
                                             "per_document": not passages, "mmr": mmr,
                                             "rerank": rerank})
    if as_json:
        print_json(task, results)
        return
    if not results.hits:
        err_console().print("no results" + ("" if filters.empty else " with these filters"))
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
    for h in results.hits:
        answers = f"answers it: {h.answer:.0%}" if h.answer is not None else None  # a re-ranked question
        about = " · ".join(x for x in (h.kind, (h.date or "")[:10], h.sender, h.heading, answers) if x)
        console.print(f"[bold]{h.rank}.[/] [cyan]{escape(h.title or h.source)}[/]  [dim]{escape(about)}[/]")
        if h.title:
            console.print(f"   [dim]{escape(h.source)}[/]")
        console.print("   " + escape(h.snippet.marked("\x02", "\x03")).replace("\x02", "[bold yellow]")
                      .replace("\x03", "[/]").replace("\n", " "))


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="a question about your indexed files and mail")],
    k: Annotated[int | None, typer.Option("-k", help="passages to answer from (default 4)")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="chat model (default: chat_model setting)")] = None,
    min_similarity: Annotated[float | None, typer.Option(help="how close a passage must be to count (0–1)")] = None,
    collection: CollectionOpt = None, path: PathOpt = None, kind: KindOpt = None, after: AfterOpt = None,
    before: BeforeOpt = None, sender: SenderOpt = None, as_json: JsonOpt = False,
) -> None:
    """Answer a question from your index: the evidence sentences first, then the answer built from them,
    cited as \\[source:sentence]; or "the documents do not say"."""
    filters = _filters(collection, path, kind, after, before, sender)
    task, stream = stream_task(ctx, "ask", {"question": question, "k": k, "filters": filters, "model": model,
                                            "min_similarity": min_similarity})
    evidence = getattr(stream, "evidence", [])
    if evidence and not as_json:
        write("Evidence:\n")
        for e in evidence:
            write(f"  [{e.source}:{e.sentence}] “{e.text}”  ({e.score:.2f})\n")
        write("\n")
    relay(stream, echo=not as_json)
    answer = stream.result()
    if as_json:
        print_json(task, answer)
        return
    write("\n")
    if answer.warning:
        write(f"warning: {answer.warning}\n")
    if answer.sources:
        write("\nSources:\n")
        for s in answer.sources:
            about = ", ".join(x for x in (s.title, s.sender, (s.date or "")[:10]) if x)
            write(f"[{s.number}] {s.source}" + (f" ({about})" if about else "")
                  + ("  <- cited" if s.number in answer.citations else "") + "\n")
    for r in answer.rejected:
        write(f"left out of the answer (the evidence does not support it: {r.reason}): “{r.text}”\n")
