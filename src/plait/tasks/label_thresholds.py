"""Labels that abstain: a label is given only when its probability reaches the label's own threshold,
chosen on held-out labelled texts; below it the text is ``unsure``. Labels that must say why (``urgent``)
come with the words that drove them (occlusion, :mod:`plait.tasks.explain`).

A threshold is the lowest probability at which the label's decisions on held-out labelled texts reach a
wanted precision (:func:`choose_thresholds`); ``urgent`` asks the most of it. Held-out means the texts the
threshold is chosen on are not the ones it is reported on, and not the examples the classifier learnt
from: with corrections as examples, their probabilities come from cross-validation
(:func:`held_out_probabilities`), each fold scored by a classifier built without it.

The wrapper (:class:`ThresholdedClassifier`) leaves the classifier's probabilities alone and changes only
the decision, so it composes with any :class:`~plait.tasks.classifiers.Classifier`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from plait.errors import InputError
from plait.readers.labelled import Example
from plait.tasks.classifiers import Classification, Classifier, Progress, check_texts

if TYPE_CHECKING:
    import numpy as np

NEVER = 1.01  # a threshold no probability reaches: the label is never given
MIN_DECISIONS = 3  # a threshold rests on at least this many held-out decisions of its label
WHY_WORDS = 5  # words given as the reason for a label that must say why
FOLDS = 5


def choose_thresholds(probabilities: np.ndarray, gold: Sequence[str], labels: Sequence[str],
                      precision: Mapping[str, float], *, default: float = 0.8,
                      min_decisions: int = MIN_DECISIONS) -> dict[str, float]:
    """Per label, the lowest threshold whose held-out decisions reach the wanted precision.

    ``probabilities`` (n, k) are held-out probabilities of n labelled texts, ``gold`` their labels. A text
    is decided ``label`` when it is its most probable label and the probability reaches the threshold.
    Precision is counted as ``correct / (decisions + 1)``: one imagined wrong decision, so a threshold that
    rests on two lucky decisions does not pass a 0.9 bar. A label that never reaches its precision gets
    :data:`NEVER` (it is not given until labelled examples show it can be).
    """
    import numpy as np

    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != len(labels) or p.shape[0] != len(gold):
        raise InputError("choosing thresholds needs one row of label probabilities per labelled text")
    top = p.argmax(axis=1)
    confidence = p[np.arange(len(p)), top]
    out: dict[str, float] = {}
    for j, label in enumerate(labels):
        wanted = float(precision.get(label, default))
        mine = np.where(top == j)[0]
        best = NEVER
        # Candidate thresholds: the probabilities the label's own decisions have, highest first.
        order = mine[np.argsort(-confidence[mine])]
        correct = 0
        for rank, i in enumerate(order, start=1):
            correct += int(gold[i] == label)
            if rank >= min_decisions and correct / (rank + 1) >= wanted:
                best = float(confidence[i])
        out[label] = best
    return out


def held_out_probabilities(build: Callable[[Sequence[Example]], Classifier], examples: Sequence[Example], *,
                           folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Cross-validated probabilities of ``examples``: each fold scored by ``build`` on the other folds."""
    import numpy as np

    if len(examples) < 2:
        raise InputError("cross-validation needs two or more labelled examples")
    folds = max(2, min(folds, len(examples)))
    rng = np.random.default_rng(seed)
    which = rng.permutation(len(examples)) % folds
    out: np.ndarray | None = None
    for f in range(folds):
        train = [e for e, w in zip(examples, which, strict=True) if w != f]
        test = [i for i, w in enumerate(which) if w == f]
        if not test:
            continue
        clf = build(train)
        proba = clf.predict_proba([examples[i].text for i in test])
        if out is None:
            out = np.zeros((len(examples), proba.shape[1]))
        out[test] = proba
    assert out is not None
    return out


class ThresholdedClassifier(Classifier):
    """A classifier whose decisions abstain below per-label thresholds, and explain some labels."""

    def __init__(self, inner: Classifier, thresholds: Mapping[str, float], *, explain: Sequence[str] = (),
                 default: float | None = None) -> None:
        unknown = [name for name in [*thresholds, *explain] if name not in inner.labels]
        if unknown:
            raise InputError(f"thresholds or explanations name labels the classifier does not have: "
                             f"{', '.join(unknown)} (its labels: {', '.join(inner.labels)})")
        self.inner = inner
        self.labels = inner.labels
        self.multi_label = inner.multi_label
        self.threshold = default
        self.thresholds = dict(thresholds)
        self.explain = tuple(explain)
        self.spec = getattr(inner, "spec", None)  # type: ignore[assignment]

    def predict_proba(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        return self.inner.predict_proba(texts, progress=progress)

    def classify(self, texts: Sequence[str], *, threshold: float | None = None,
                 progress: Progress | None = None) -> list[Classification]:
        texts = check_texts(texts)
        results = super().classify(texts, threshold=threshold, progress=progress)
        if not self.explain:
            return results
        return [self._why(text, r) if r.label in self.explain else r for text, r in zip(texts, results, strict=True)]

    def decide(self, row: np.ndarray, threshold: float | None) -> Classification:
        decided = super().decide(row, threshold if threshold is not None else self.threshold)
        if self.multi_label:
            kept = tuple(s.label for s in decided.scores if s.label in decided.labels
                         and s.probability >= self.thresholds.get(s.label, 0.0))
            return replace(decided, label=kept[0] if kept else None, labels=kept)
        if decided.label is not None and decided.scores[0].probability < self.thresholds.get(decided.label, 0.0):
            return replace(decided, label=None, labels=())
        return decided

    def _why(self, text: str, result: Classification) -> Classification:
        from plait.tasks.explain import explain

        assert result.label is not None
        explanation = explain(self.inner, text, label=result.label, method="occlusion")
        words = [w.text for w in explanation.top(WHY_WORDS * 2) if w.score > 0]
        return replace(result, why=tuple(dict.fromkeys(words))[:WHY_WORDS])


# --- a workflow's classifier: descriptions, the person's corrections, thresholds ----------------------

_BUILT: dict[tuple[object, ...], Classifier] = {}
MAX_BUILT = 8


def corrections_examples(folder: str | None, labels: Sequence[str]) -> list[Example]:
    """The labelled examples in a corrections folder (one sub-folder per label); none when it is missing.
    Sub-folders named after no label are an error that names them."""
    from pathlib import Path

    from plait.readers.labelled import read_examples

    if not folder:
        return []
    root = Path(folder).expanduser()
    if not root.is_dir() or not any(p.is_dir() and any(p.iterdir()) for p in root.iterdir()):
        return []
    examples = read_examples(root, "classify")
    unknown = sorted({tag for e in examples for tag in e.labels if tag not in labels})
    if unknown:
        raise InputError(f"{root} has corrections for {', '.join(unknown)}, which are not among the labels "
                         f"({', '.join(labels)}); rename or remove those folders")
    return examples


def _signature(folder: str | None) -> tuple[tuple[str, int], ...]:
    from pathlib import Path

    if not folder or not Path(folder).expanduser().is_dir():
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in Path(folder).expanduser().rglob("*") if p.is_file()))


def abstaining_classifier(inner: Callable[[Sequence[Example]], Classifier], labels: Sequence[str], *,
                          corrections: str | None, thresholds: Mapping[str, float],
                          precision: Mapping[str, float], explain: Sequence[str], key: object) -> Classifier:
    """The classifier a workflow labels with: built by ``inner`` from the corrections (none: zero-shot),
    deciding with ``thresholds``, re-chosen on the corrections (cross-validated) for the labels that have
    enough of them when ``precision`` is given. Kept while the corrections folder is unchanged."""
    cache_key = (key, _signature(corrections))
    if cache_key in _BUILT:
        return _BUILT[cache_key]
    examples = corrections_examples(corrections, labels)
    classifier = inner(examples)
    chosen = dict(thresholds)
    if precision and len(examples) >= 2 * MIN_DECISIONS:
        probabilities = held_out_probabilities(inner, examples)
        gold = [e.labels[0] for e in examples]
        fitted = choose_thresholds(probabilities, gold, labels, precision)
        counts = {label: sum(1 for g in gold if g == label) for label in labels}
        # Only labels the corrections say enough about move; the others keep their given thresholds.
        chosen.update({label: t for label, t in fitted.items() if counts[label] >= MIN_DECISIONS})
    built: Classifier = classifier
    if chosen or explain:
        built = ThresholdedClassifier(classifier, chosen, explain=explain)
    if len(_BUILT) >= MAX_BUILT:
        _BUILT.pop(next(iter(_BUILT)))
    _BUILT[cache_key] = built
    return built
