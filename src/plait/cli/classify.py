"""`plait classify`: put texts or files into labels (zero-shot, few-shot, or a trained classifier)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from plait.cli.batch import progress
from plait.cli.common import read_input, state
from plait.errors import InputError


def register(app: typer.Typer) -> None:
    app.command()(classify)


def _parse_labels(values: list[str]) -> dict[str, str | None]:
    labels: dict[str, str | None] = {}
    for value in values:
        name, sep, description = value.partition("=")
        name = name.strip()
        if name in labels:
            raise InputError(f"label '{name}' is given twice")
        labels[name] = description.strip() if sep and description.strip() else None
    return labels


def _inputs(paths: list[Path], texts: list[str], lines: bool) -> tuple[list[str], list[str], list[str]]:
    """(sources, texts, errors): every document of every file, or every line when ``lines``."""
    from plait.readers.document import READERS, read_documents

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
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in READERS))
        else:
            files.append(path)
    for file in files:
        try:
            for doc in read_documents(file):
                add(doc.source, doc.text)
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
    from plait.tasks.classify import ClassifyConfig
    from plait.tasks.labelled import read_examples

    if method not in ("auto", "similarity", "logistic", "llm"):
        raise typer.BadParameter(f"unknown method '{method}'; use auto, similarity, logistic or llm",
                                 param_hint="--method")
    labels = _parse_labels(label or [])
    shots = read_examples(examples) if examples else []
    if not labels and not shots and not classifier:
        raise InputError("give the labels (--label NAME, repeatable), labelled --examples, or a --classifier")
    sources, texts, errors = _inputs(files or [], text or [], lines)
    for error in errors:
        print(f"plait: error: {error}", file=sys.stderr)
    if not texts:
        raise InputError("nothing to classify: every input was empty or unreadable")
    names = list(labels) or list(dict.fromkeys(tag for _, tags in shots for tag in tags))
    grouped: dict[str, list[str]] = {name: [] for name in names}
    for example_text, tags in shots:
        for tag in tags:
            grouped.setdefault(tag, []).append(example_text)
    if any(len(tags) > 1 for _, tags in shots):
        multi_label = True  # examples with several labels only make sense for multi-label classification
    config = ClassifyConfig(labels=names, descriptions={k: v for k, v in labels.items() if v},
                            examples={k: v for k, v in grouped.items() if v}, method=method,  # type: ignore[arg-type]
                            multi_label=multi_label, threshold=threshold, template=template, model=model,
                            classifier=classifier)
    clf = config.build(state(ctx).runtime())
    with progress(len(texts), f"classifying with {clf.name}", min_items=8) as advance:
        results = clf.classify(texts, threshold=threshold, progress=advance)
    for source, result in zip(sources, results, strict=True):
        if as_json:
            print(json.dumps({"source": source, **result.as_dict()}, ensure_ascii=False))
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
