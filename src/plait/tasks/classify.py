"""classify: put texts into labels, zero-shot from label names or descriptions, few-shot from examples,
or with a trained classifier from the catalog.

Methods (``method=``):

- ``similarity`` — cosine similarity between the text's embedding and each label's prototype (default
  embedder). Zero-shot the prototype is the label's text: its description if given, else the name put
  through ``template`` (default ``"{label}"``: the name itself); few-shot it is the centroid of the
  label's examples with the label's text as one more example.
- ``logistic`` — logistic regression on embeddings of the examples (needs examples for every label).
- ``llm`` — a language model scores each label as the answer (see :mod:`plait.tasks.llm_labels`).
- ``auto`` (default) — ``logistic`` when every label has at least ``LOGISTIC_MIN_EXAMPLES`` examples,
  else ``similarity``.

Probabilities are calibrated (temperature scaling, or Platt scaling per label for multi-label) on the
examples when there are any, else they follow the method's documented prior. ``threshold`` makes the
classifier abstain: a single-label result whose top probability is below it has ``label=None``; a
multi-label result keeps the labels at or above it (0.5 by default) and abstains when none is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, overload

from pydantic import Field

from plait.errors import InputError
from plait.models.base import Embedder, Model, TextGenerator
from plait.readers.labelled import Example
from plait.runtime import Runtime, get_runtime
from plait.tasks.classifiers import (
    Classification,
    Classifier,
    LabelScore,
    LogisticClassifier,
    Progress,
    PrototypeClassifier,
    check_texts,
)
from plait.tasks.registry import MAX_TEXT_CHARS, SERVER_PATH, Batch, Task, TaskContext, TaskRequest

__all__ = ["Classification", "Classifier", "ClassifyConfig", "LabelScore", "build_classifier", "classify"]

Method = Literal["auto", "similarity", "logistic", "llm"]
# With fewer examples than this per label, nearest-centroid beat logistic regression on embeddings in
# bench/tasks_classify.py (mini 20-Newsgroups, 8 examples per label: 0.97 against 0.95).
LOGISTIC_MIN_EXAMPLES = 16

Labels = Sequence[str] | Mapping[str, str | None]
Examples = Mapping[str, Sequence[str]] | Sequence[tuple[str, str | Sequence[str]] | Example]


class LabelledText(TaskRequest):
    text: str = Field(min_length=1)
    labels: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1, description="the label(s) it carries")


class ClassifyConfig(TaskRequest):
    """A classification set-up as a user writes it (a JSON/YAML file, an HTTP request, a workflow step)."""

    labels: list[str] | dict[str, str | None] = Field(
        default_factory=list, description="label names in order; 'name=description' (or a mapping name → "
                                          "description) describes a label, and the description is used instead")
    descriptions: dict[str, str] = Field(default_factory=dict,
                                         description="label → text describing it, used instead of the name")
    examples: dict[str, list[str]] | list[LabelledText] = Field(
        default_factory=dict, description="label → example texts, or a list of {text, labels}")
    method: Method = "auto"
    multi_label: bool | None = Field(default=None, description="any number of labels per text (default: when an "
                                     "example carries several labels)")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="abstain below this probability")
    template: str = Field(default="{label}", description="zero-shot label text, e.g. 'a post about {label}'")
    model: str | None = Field(default=None, description="embedder (similarity, logistic) or chat model (llm)")
    classifier: str | None = Field(default=None, description="a trained classifier from the catalog")
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="label → the lowest probability at which it is given; below it the "
                                          "text is unsure (see plait.tasks.label_thresholds)")
    precision: dict[str, float] = Field(
        default_factory=dict, description="label → the precision its decisions must reach on the corrections "
                                          "(cross-validated): thresholds are chosen from the corrections")
    explain: list[str] = Field(default_factory=list, description="labels that come with the words that drove "
                                                                 "them (why)")
    corrections: str | None = Field(default=None, description="a folder with one sub-folder per label of texts "
                                    "or mails a person labelled: they become examples (few-shot)",
                                    json_schema_extra=SERVER_PATH)

    def build(self, runtime: Runtime | None = None) -> Classifier:
        if self.thresholds or self.precision or self.explain or self.corrections:
            from plait.tasks.label_thresholds import abstaining_classifier

            plain = self.model_copy(update={"thresholds": {}, "precision": {}, "explain": [], "corrections": None})
            names = list(parse_labels(self.labels)) or list(self.descriptions)

            def inner(examples: Sequence[Example]) -> Classifier:
                if not examples:
                    return plain.build(runtime)
                return plain.model_copy(update={"examples": [LabelledText(text=e.text, labels=list(e.labels))
                                                             for e in examples]}).build_few_shot(runtime)

            return abstaining_classifier(inner, names, corrections=self.corrections, thresholds=self.thresholds,
                                         precision=self.precision, explain=self.explain,
                                         key=(id(runtime), plain.model_dump_json()))
        if self.classifier:
            if self.labels or self.examples or self.descriptions:
                raise InputError("a trained classifier brings its own labels: give either a classifier or "
                                 "labels/examples, not both")
            return load_classifier(self.classifier, runtime)
        labels = parse_labels(self.labels)
        for name, description in self.descriptions.items():
            if name not in labels:
                raise InputError(f"a description is given for '{name}', which is not among the labels")
            labels[name] = description
        examples: Examples = self.examples if isinstance(self.examples, dict) else \
            [Example(e.text, tuple(e.labels)) for e in self.examples]
        return build_classifier(labels or None, examples=examples or None, method=self.method,
                                multi_label=self.multi_label, threshold=self.threshold,
                                template=self.template, model=self.model, runtime=runtime)


    def build_few_shot(self, runtime: Runtime | None) -> Classifier:
        """Few-shot from the examples, with each label's description as one more example; a label without
        examples keeps its description alone (corrections seldom cover every label)."""
        labels = parse_labels(self.labels)
        for name, description in self.descriptions.items():
            labels[name] = description
        rt = runtime or get_runtime()
        embedder = rt.model(self.model or rt.settings.embed_model, Embedder)
        names = list(labels)
        shots = _examples([Example(e.text, tuple(e.labels)) for e in self.examples]
                          if isinstance(self.examples, list) else self.examples)
        model = PrototypeClassifier.few_shot(embedder, names, [labels[n] or self.template.format(label=n)
                                                               for n in names], shots,
                                             multi_label=bool(self.multi_label), threshold=self.threshold)
        if len({tag for e in shots for tag in e.labels}) < 2:
            # Examples of one label say nothing about how far apart labels are: a temperature fitted on
            # them makes every text near-certain. Keep the similarity prior until two labels have examples.
            from plait.tasks.classifiers import default_cosine_calibrator

            model.calibrator = default_cosine_calibrator(bool(self.multi_label))
        return model


def parse_labels(labels: Labels | None) -> dict[str, str | None]:
    """Label names → descriptions: the one reading of labels, whichever door they come through.

    A name may carry its description as ``name=description``; a mapping gives them directly.
    """
    if labels is None:
        return {}
    if isinstance(labels, str):
        raise InputError("labels must be a list of names (or a mapping name → description), not one string")
    items = list(labels.items()) if isinstance(labels, Mapping) else [_split_label(name) for name in labels]
    out: dict[str, str | None] = {}
    for name, description in items:
        if not isinstance(name, str) or not name.strip():
            raise InputError("a label name is empty; every label needs a name")
        name = name.strip()
        if name in out:
            raise InputError(f"label '{name}' is given twice")
        out[name] = description.strip() if isinstance(description, str) and description.strip() else None
    return out


def _split_label(value: object) -> tuple[object, str | None]:
    if isinstance(value, str) and "=" in value:
        name, _, description = value.partition("=")
        return name, description
    return value, None


def _examples(examples: Examples | None) -> list[Example]:
    if examples is None:
        return []
    out: list[Example] = []
    if isinstance(examples, Mapping):
        for label, texts in examples.items():
            if isinstance(texts, str):
                raise InputError(f"examples of '{label}' must be a list of texts, not one string")
            out.extend(Example(text, (label,)) for text in texts)
    else:
        for item in examples:
            if isinstance(item, Example):
                out.append(item)
                continue
            text, tags = item
            out.append(Example(text, (tags,) if isinstance(tags, str) else tuple(tags)))
    for e in out:
        if not isinstance(e.text, str) or not e.text.strip():
            raise InputError("an example text is empty; remove it or give its text")
        if not e.labels:
            raise InputError(f"example {e.text[:40]!r} has no label")
    return out


def build_classifier(labels: Labels | None = None, *, examples: Examples | None = None,
                     method: Method = "auto", multi_label: bool | None = None, threshold: float | None = None,
                     template: str = "{label}", model: str | Model | None = None,
                     runtime: Runtime | None = None) -> Classifier:
    """A classifier from label names (or name → description) and/or examples; see the module docstring.

    Labels default to those of the examples, in order of first appearance. ``multi_label`` defaults to
    whether any example carries several labels. ``model`` is a catalog name or a loaded model: an embedder
    for ``similarity``/``logistic``, a text generator for ``llm``.
    """

    named = parse_labels(labels)
    shots = _examples(examples)
    if multi_label is None:
        multi_label = any(len(e.labels) > 1 for e in shots)
    if not named:
        for e in shots:
            for tag in e.labels:
                named.setdefault(tag, None)
    names = list(named)
    counts = _check_setup(names, shots, multi_label=multi_label, threshold=threshold, template=template)

    rt = runtime or get_runtime()
    if method == "auto":
        method = "logistic" if shots and min(counts.values()) >= LOGISTIC_MIN_EXAMPLES else "similarity"
    if method == "llm":
        if shots:
            raise InputError("the llm method is zero-shot: drop the examples, or use the similarity or "
                             "logistic method to learn from them")
        from plait.tasks.llm_labels import LlmClassifier

        if isinstance(model, TextGenerator):
            return LlmClassifier(model, names, [named[n] for n in names], multi_label=multi_label,
                                 threshold=threshold)
        chat_name = _name(model) or rt.settings.chat_model
        return LlmClassifier(rt.model(chat_name, TextGenerator), names, [named[n] for n in names],
                             multi_label=multi_label, threshold=threshold,
                             reacquire=lambda: rt.model(chat_name, TextGenerator))
    embedder = model if isinstance(model, Embedder) else rt.model(_name(model) or rt.settings.embed_model, Embedder)
    label_texts = [named[n] or template.format(label=n) for n in names]
    if method == "logistic":
        if not shots:
            raise InputError("the logistic method learns from examples: give some for every label")
        return LogisticClassifier.fit(embedder, names, shots, multi_label=multi_label, threshold=threshold)
    if method != "similarity":
        raise InputError(f"unknown classification method '{method}'; use auto, similarity, logistic or llm")
    if shots:
        return PrototypeClassifier.few_shot(embedder, names, label_texts, shots, multi_label=multi_label,
                                            threshold=threshold)
    return PrototypeClassifier.zero_shot(embedder, names, label_texts, multi_label=multi_label,
                                         threshold=threshold)


def _check_setup(names: list[str], shots: list[Example], *, multi_label: bool, threshold: float | None,
                 template: str) -> dict[str, int]:
    """Refuse a set-up that cannot classify; returns the examples per label."""
    if not names:
        raise InputError("no labels to classify into: give two or more labels, or examples with labels")
    if len(names) == 1 and not multi_label:
        raise InputError(f"only one label ('{names[0]}'): there is nothing to choose between; give two or more "
                         "labels, or use multi-label classification to ask whether each text is about it")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise InputError(f"threshold {threshold} is not a probability between 0 and 1")
    counts = dict.fromkeys(names, 0)
    for e in shots:
        for tag in e.labels:
            if tag not in counts:
                raise InputError(f"example {e.text[:40]!r} has label '{tag}', which is not among the labels "
                                 f"({', '.join(names)})")
            counts[tag] += 1
    if shots and (missing := [name for name, n in counts.items() if n == 0]):
        raise InputError(f"no examples for {', '.join(repr(m) for m in missing)}: give at least one example "
                         "per label, or none at all for zero-shot classification")
    if "{label}" not in template:
        raise InputError("the label template must contain {label}, e.g. 'a post about {label}'")
    return counts


def _name(model: str | Model | None) -> str | None:
    if model is None or isinstance(model, str):
        return model
    raise InputError(f"model {model.spec.name} cannot do what this classification method needs; "
                     "similarity and logistic need an embedding model, llm a text generator")


def load_classifier(name: str, runtime: Runtime | None = None) -> Classifier:
    """A trained classifier from the catalog (an entry whose backend loads a :class:`Classifier`)."""
    rt = runtime or get_runtime()
    return rt.model(name, Classifier)


@overload
def classify(  # type: ignore[overload-overlap]  # a str is also a Sequence[str]
        texts: str, labels: Labels | None = ..., *, examples: Examples | None = ...,
        method: Method = ..., multi_label: bool | None = ..., threshold: float | None = ...,
        template: str = ..., model: str | Model | None = ..., classifier: str | Classifier | None = ...,
        runtime: Runtime | None = ..., progress: Progress | None = ...) -> Classification: ...
@overload
def classify(texts: Sequence[str], labels: Labels | None = ..., *, examples: Examples | None = ...,
             method: Method = ..., multi_label: bool | None = ..., threshold: float | None = ...,
             template: str = ..., model: str | Model | None = ..., classifier: str | Classifier | None = ...,
             runtime: Runtime | None = ..., progress: Progress | None = ...) -> list[Classification]: ...
def classify(texts: str | Sequence[str], labels: Labels | None = None, *, examples: Examples | None = None,
             method: Method = "auto", multi_label: bool | None = None, threshold: float | None = None,
             template: str = "{label}", model: str | Model | None = None, classifier: str | Classifier | None = None,
             runtime: Runtime | None = None, progress: Progress | None = None
             ) -> Classification | list[Classification]:
    """Classify one text (→ one :class:`Classification`) or many (→ a list, in order).

    Give ``labels`` (names, or a mapping name → description) and/or ``examples`` (label → texts, or
    (text, label-or-labels) pairs), or a trained ``classifier`` (a catalog name or object).
    """
    if classifier is not None:
        if labels is not None or examples is not None:
            raise InputError("a trained classifier brings its own labels: give either a classifier or "
                             "labels/examples, not both")
        clf = classifier if isinstance(classifier, Classifier) else load_classifier(classifier, runtime)
    else:
        clf = build_classifier(labels, examples=examples, method=method, multi_label=multi_label,
                               threshold=threshold, template=template, model=model, runtime=runtime)
    if isinstance(texts, str):
        return clf.classify([texts], threshold=threshold, progress=progress)[0]
    return clf.classify(list(texts), threshold=threshold, progress=progress)


# --- the task -----------------------------------------------------------------------------------------

MAX_TEXTS = 100_000  # per request; the server's body-size limit usually bites first


class ClassifyRequest(ClassifyConfig):
    texts: str | list[str] = Field(description=f"a text, or a list of up to {MAX_TEXTS} texts")

    def items(self) -> list[str]:
        items = [self.texts] if isinstance(self.texts, str) else list(self.texts)
        if not items or len(items) > MAX_TEXTS:
            raise InputError(f"texts: give 1 to {MAX_TEXTS} texts")
        for i, text in enumerate(items, 1):
            if len(text) > MAX_TEXT_CHARS:
                raise InputError(f"texts: text #{i} is longer than {MAX_TEXT_CHARS:,} characters")
        return check_texts(items)

    def config(self) -> ClassifyConfig:
        return ClassifyConfig.model_validate(self.model_dump(exclude={"texts"}))


def _answer(request: ClassifyRequest, results: list[Classification]) -> Classification | list[Classification]:
    return results[0] if isinstance(request.texts, str) else results


def _run(request: ClassifyRequest, ctx: TaskContext) -> Classification | list[Classification]:
    texts = request.items()  # checked before building a classifier, which may embed examples
    classifier = request.config().build(ctx.runtime)
    return _answer(request, classifier.classify(texts, threshold=request.threshold, progress=ctx.progress))


def _runner(request: ClassifyRequest, runtime: Runtime) -> Callable[[list[str]], Sequence[Classification]]:
    config = request.config()
    built: list[Classifier] = []

    def run(texts: list[str]) -> Sequence[Classification]:
        if not built:  # built in the worker thread, on the first batch (it may embed examples)
            built.append(config.build(runtime))
        return built[0].classify(texts, threshold=config.threshold)
    return run


def _models(request: ClassifyRequest, settings: Any) -> list[str | None]:
    if request.classifier:
        return [request.classifier]
    return [request.model or (settings.chat_model if request.method == "llm" else settings.embed_model)]


TASK = Task(
    name="classify", summary="Put texts into labels: zero-shot, few-shot from examples, or a trained classifier",
    request=ClassifyRequest, result=Classification | list[Classification], input="texts", run=_run,
    # Requests with the same set-up share a classifier and are classified in one batch.
    # Keyed by a digest: the set-up can carry megabytes of examples, and up to 256 batchers are kept.
    batch=Batch(items=ClassifyRequest.items,
                key=lambda request: hashlib.sha256(request.config().model_dump_json().encode()).hexdigest(),
                runner=_runner, answer=_answer),
    models=_models,
)
