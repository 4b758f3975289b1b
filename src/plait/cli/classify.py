"""`plait classify`: put texts or files into labels (zero-shot, few-shot, or a trained classifier)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.batch import progress
from plait.cli.common import read_input
from plait.cli.tasks import print_json, run_task
from plait.errors import InputError


def register(app: typer.Typer) -> None:
    app.command()(classify)


def _inputs(paths: list[Path], texts: list[str], lines: bool) -> tuple[list[str], list[str], list[str]]:
    """(sources, texts, errors): every document of every file, or every line when ``lines``."""
    from plait.readers.document import can_read, read_documents
    from plait.readers.mail import written_text
    from plait.readers.walk import readable_files

    sources: list[str] = []
    out: list[str] = []
    errors: list[str] = []

    def add(source: str, text: str) -> None:
        if lines:
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    sources.append(f"{source}:{n}")
                    out.append(line.strip())
        elif text.strip():
            sources.append(source)
            out.append(text)
        else:
            errors.append(f"{source} is empty: there is nothing to classify")

    for i, text in enumerate(texts, 1):
        add(f"text {i}", text)
    files: list[Path] = []
    for path in paths:
        if path.is_dir() and not can_read(path):
            files.extend(readable_files(path))
        else:
            files.append(path)
    for file in files:
        try:
            for doc in read_documents(file):
                add(doc.source, written_text(doc))  # a mail: what its sender wrote, not the quotes
        except InputError as exc:
            errors.append(str(exc))
    if not paths and not texts:
        add("stdin", read_input(None))
    return sources, out, errors


def classify(
    ctx: typer.Context,
    files: Annotated[list[Path] | None, typer.Argument(help="files or folders to classify; none reads standard input",
                                                       show_default=False)] = None,
    label: Annotated[list[str] | None, typer.Option("--label", "-l", help="a label; NAME=DESCRIPTION describes it "
                                                    "(repeat for each label)")] = None,
    examples: Annotated[Path | None, typer.Option("--examples", "-e", help="labelled examples for few-shot: CSV "
                                                  "(text,label), JSON lines, or a folder of one sub-folder per label")
                        ] = None,
    text: Annotated[list[str] | None, typer.Option("--text", "-t", help="a text to classify (repeatable)")] = None,
    lines: Annotated[bool, typer.Option("--lines", help="classify each non-empty line on its own")] = False,
    method: Annotated[str, typer.Option(help="auto, similarity, logistic or llm")] = "auto",
    multi_label: Annotated[bool, typer.Option("--multi-label", help="any number of labels per text")] = False,
    threshold: Annotated[float | None, typer.Option(help="abstain below this probability (multi-label: keep "
                                                    "labels at or above it; default 0.5)")] = None,
    template: Annotated[str, typer.Option(help="zero-shot label text, e.g. 'a post about {label}'")] = "{label}",
    model: Annotated[str | None, typer.Option("--model", "-m", help="embedder (similarity, logistic) or chat "
                                              "model (llm); default from settings")] = None,
    classifier: Annotated[str | None, typer.Option(help="a trained classifier from the catalog")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per input")] = False,
) -> None:
    """Classify texts into labels: zero-shot from label names or descriptions, few-shot from examples.

    Examples:  plait classify -l spam -l "ham=ordinary personal or work mail" mail.eml
               cat posts.txt | plait classify --lines -l sports -l politics --json
    """
    from plait.readers.labelled import read_examples

    if method not in ("auto", "similarity", "logistic", "llm"):
        raise typer.BadParameter(f"unknown method '{method}'; use auto, similarity, logistic or llm",
                                 param_hint="--method")
    shots = read_examples(examples, "multilabel") if examples else []
    if not label and not shots and not classifier:
        raise InputError("give the labels (--label NAME, repeatable), labelled --examples, or a --classifier")
    sources, texts, errors = _inputs(files or [], text or [], lines)
    for error in errors:
        print(f"plait: error: {error}", file=sys.stderr)
    if not texts:
        raise InputError("nothing to classify: every input was empty or unreadable")
    fields = {"texts": texts, "labels": label, "method": method, "threshold": threshold, "template": template,
              "model": model, "classifier": classifier, "multi_label": True if multi_label else None,
              "examples": [{"text": e.text, "labels": list(e.labels)} for e in shots] or None}
    with progress(len(texts), "classifying", min_items=8) as advance:
        task, results = run_task(ctx, "classify", fields, progress=advance)
    for source, result in zip(sources, results, strict=True):
        if as_json:
            print_json(task, result, **({} if source.startswith(("text ", "stdin")) else {"source": source}))
            continue
        decision = ", ".join(result.labels) if result.labels else "(abstain)"
        top = result.scores[0]
        if len(results) == 1:
            print(decision)
            for score in result.scores:
                print(f"  {score.probability:.3f}  {score.label}")
        else:
            print(f"{source}\t{decision}\t{top.probability:.3f}")
    if errors:
        raise InputError(f"{len(errors)} input(s) could not be classified (see above); the others are done")
