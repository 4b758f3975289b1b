"""Text classifiers: the interface, its decisions, and the embedding-based implementations.

The one extension point is :class:`Classifier` with one abstract method, ``predict_proba``: texts in,
one probability per label out. The base class turns probabilities into decisions (top label, every
label above a threshold for multi-label use, abstaining when nothing is confident enough), so a model
trained by ``plait tune`` plugs in by implementing ``predict_proba`` and setting ``labels``; the
catalog can then load it by name (``classify(texts, classifier="triage@3")``).

:class:`ScoreClassifier` is the middle layer for classifiers that produce raw scores (similarities,
log-probabilities) and need a calibrator to turn them into probabilities; ``calibrate`` refits that
calibrator from labelled texts.

Implementations here:

- :class:`PrototypeClassifier`: cosine similarity to one prototype vector per label. Zero-shot, the
  prototype is the embedding of the label's text (its name, a description, or a template around the
  name); few-shot, it is the centroid of the label's example embeddings, with the label's text counted
  as one more example. Nearest-centroid is what works with a handful of examples: logistic regression
  needs more data before it overtakes it (see ``bench/tasks_classify.py``).
- :class:`LogisticClassifier`: logistic regression on embeddings (scikit-learn), for larger example sets.

The LLM-based classifier lives in :mod:`plait.tasks.llm_labels`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import computed_field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from plait.errors import InputError
from plait.models.base import Embedder, Model
from plait.readers.labelled import Example
from plait.tasks.calibration import PlattScaling, TemperatureScaling, require_sklearn

if TYPE_CHECKING:
    import numpy as np

Progress = Callable[[int], None]

# Priors for cosine similarities of sentence embeddings, used until calibrated on labelled texts:
# similarities of related texts differ by hundredths, so a softmax at temperature T spreads them into
# usable probabilities; for independent (multi-label) decisions a similarity of COSINE_MIDPOINT is taken as
# even odds (on mini 20-Newsgroups, MiniLM gives ~0.23 to the right label and ~0.04 to the wrong one).
# Both were chosen on one half of those posts and are reported on the other (bench/thresholds.py, 5
# stratified splits, median pick): T = 0.025 gave an expected calibration error of 0.034 on the report
# halves where the earlier 0.05 gave 0.063; the midpoint 0.09 a multi-label macro F1 of 0.862 (0.858 at
# the earlier 0.15).
COSINE_TEMPERATURE = 0.025
COSINE_MIDPOINT = 0.09


@dataclass(frozen=True)
class LabelScore:
    label: str
    probability: float


@pydantic_dataclass(frozen=True)
class Classification:
    """One text's result.

    ``label`` is the decision, ``None`` when the classifier abstains (the top probability is below the
    threshold, or, multi-label, no label reaches it). ``labels`` holds every chosen label (multi-label)
    or just ``label``; ``scores`` every label, most probable first.
    """

    label: str | None
    labels: tuple[str, ...]
    scores: tuple[LabelScore, ...]
    why: tuple[str, ...] = ()  # the words that drove the label, for labels asked to explain themselves

    @computed_field  # type: ignore[prop-decorator]  # part of the JSON form, like the fields
    @property
    def abstained(self) -> bool:
        return self.label is None


def check_texts(texts: Sequence[str]) -> list[str]:
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"text #{i + 1} is {type(text).__name__}, not a string")
        if not text.strip():
            raise InputError(f"text #{i + 1} is empty: there is nothing to classify")
        out.append(text)
    return out


class Classifier(Model):
    """Texts → probabilities over ``labels``. Implement :meth:`predict_proba`; the rest is built on it.

    ``multi_label`` classifiers give each label an independent probability (a text can carry several);
    single-label ones give a distribution over the labels (rows sum to 1). ``threshold`` is the
    classifier's default decision threshold (None: single-label never abstains, multi-label uses 0.5).
    """

    labels: tuple[str, ...]
    multi_label: bool = False
    threshold: float | None = None

    @abstractmethod
    def predict_proba(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Probabilities, float array of shape (len(texts), len(labels)); ``progress`` gets counts done."""

    @property
    def name(self) -> str:
        spec = getattr(self, "spec", None)
        return spec.name if spec is not None else type(self).__name__

    def classify(self, texts: Sequence[str], *, threshold: float | None = None,
                 progress: Progress | None = None) -> list[Classification]:
        texts = check_texts(texts)
        if not texts:
            return []
        probabilities = self.predict_proba(texts, progress=progress)
        cut = threshold if threshold is not None else self.threshold
        return [self.decide(row, cut) for row in probabilities]

    def decide(self, row: np.ndarray, threshold: float | None) -> Classification:
        order = sorted(range(len(self.labels)), key=lambda j: -float(row[j]))
        scores = tuple(LabelScore(self.labels[j], float(row[j])) for j in order)
        if self.multi_label:
            cut = 0.5 if threshold is None else threshold
            chosen = tuple(s.label for s in scores if s.probability >= cut)
            return Classification(chosen[0] if chosen else None, chosen, scores)
        top = scores[0]
        if threshold is not None and top.probability < threshold:
            return Classification(None, (), scores)
        return Classification(top.label, (top.label,), scores)


class ScoreClassifier(Classifier):
    """A classifier whose raw ``scores`` become probabilities through a fitted calibrator."""

    calibrator: TemperatureScaling | PlattScaling

    @abstractmethod
    def scores(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        """Raw scores, shape (len(texts), len(labels)); higher means more likely."""

    def predict_proba(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        return self.calibrator(self.scores(texts, progress=progress))

    def calibrate(self, texts: Sequence[str], gold: Sequence[str | Sequence[str]]) -> ScoreClassifier:
        """Refit the calibrator on labelled texts (held out from any examples); returns ``self``."""
        if len(texts) != len(gold) or not texts:
            raise InputError("calibration needs one or more texts, each with its label(s)")
        self.set_calibration(self.scores(check_texts(texts)), label_matrix(gold, self.labels))
        return self

    def set_calibration(self, scores: np.ndarray, targets: np.ndarray) -> None:
        """Fit the calibrator from raw scores and a 0/1 (n, k) target matrix."""
        import numpy as np

        if self.multi_label:
            platt = self.calibrator if isinstance(self.calibrator, PlattScaling) else None
            self.calibrator = PlattScaling.fit(scores, targets, prior=platt)
            return
        single = targets.sum(axis=1) == 1
        if not single.any():
            raise InputError("single-label calibration needs texts with exactly one label each")
        t0 = self.calibrator.temperature if isinstance(self.calibrator, TemperatureScaling) else 1.0
        self.calibrator = TemperatureScaling.fit(scores[single], np.argmax(targets[single], axis=1), prior=t0)


def label_matrix(gold: Sequence[str | Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """(n, k) 0/1 matrix from each text's label or labels; unknown labels are an error."""
    import numpy as np

    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(gold), len(labels)), dtype=np.float64)
    for i, item in enumerate(gold):
        for label in ([item] if isinstance(item, str) else item):
            if label not in index:
                raise InputError(f"label '{label}' is not one of the classifier's labels: {', '.join(labels)}")
            out[i, index[label]] = 1.0
    return out


def _unit(rows: np.ndarray) -> np.ndarray:
    import numpy as np

    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms > 0, norms, 1.0)


class PrototypeClassifier(ScoreClassifier):
    """Cosine similarity of a text's embedding to one prototype per label."""

    def __init__(self, embedder: Embedder, labels: Sequence[str], prototypes: np.ndarray, *,
                 multi_label: bool = False, threshold: float | None = None,
                 calibrator: TemperatureScaling | PlattScaling | None = None) -> None:
        self.embedder = embedder
        self.labels = tuple(labels)
        self.prototypes = _unit(prototypes)  # (k, dimensions), unit rows
        self.multi_label, self.threshold = multi_label, threshold
        self.calibrator = calibrator or default_cosine_calibrator(multi_label)

    def scores(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        vectors = self.embedder.embed_many(list(texts), kind="document", progress=progress)
        return vectors @ self.prototypes.T

    @classmethod
    def zero_shot(cls, embedder: Embedder, labels: Sequence[str], label_texts: Sequence[str], *,
                  multi_label: bool = False, threshold: float | None = None) -> PrototypeClassifier:
        # Label texts are short questions about the document ("which topic?"): embed them as queries.
        return cls(embedder, labels, embedder.embed_many(list(label_texts), kind="query"),
                   multi_label=multi_label, threshold=threshold)

    @classmethod
    def few_shot(cls, embedder: Embedder, labels: Sequence[str], label_texts: Sequence[str] | None,
                 examples: Sequence[Example], *, multi_label: bool = False,
                 threshold: float | None = None) -> PrototypeClassifier:
        """Centroids of the examples (plus each label's text as one more example, when given).

        The calibrator is fitted on leave-one-out scores: each example is scored against centroids
        built without it, which is what an unseen text would see.
        """
        import numpy as np

        vectors = embedder.embed_many([e.text for e in examples], kind="document")
        targets = label_matrix([e.labels for e in examples], labels)  # (n, k)
        sums = targets.T @ vectors  # (k, d): sum of each label's example vectors
        if label_texts is not None:
            sums = sums + embedder.embed_many(list(label_texts), kind="query")
        model = cls(embedder, labels, sums, multi_label=multi_label, threshold=threshold)
        # Leave-one-out: for example i and a label it carries, that label's sum without vector i.
        loo = np.einsum("nd,kd->nk", vectors, sums)  # v_i · sum_k
        norms_full = np.linalg.norm(sums, axis=1)  # (k,)
        own = np.einsum("nd,nd->n", vectors, vectors)  # |v_i|² (1 for unit rows)
        # |sum_k - v_i|² = |sum_k|² - 2 v_i·sum_k + |v_i|², only where example i carries label k
        norms_loo = np.sqrt(np.maximum(norms_full[None, :] ** 2 - 2 * loo * targets + own[:, None] * targets,
                                       1e-12))
        dots = loo - own[:, None] * targets
        scores = np.where(norms_loo > 1e-6, dots / norms_loo, 0.0)
        if len(examples) >= 2:
            model.set_calibration(scores, targets)
        return model


def default_cosine_calibrator(multi_label: bool) -> TemperatureScaling | PlattScaling:
    if multi_label:
        scale = 1.0 / COSINE_TEMPERATURE
        return PlattScaling(default_slope=scale, default_offset=-scale * COSINE_MIDPOINT)
    return TemperatureScaling(COSINE_TEMPERATURE)


class LogisticClassifier(Classifier):
    """Logistic regression on embeddings (one-vs-rest for multi-label); its probabilities are its own."""

    def __init__(self, embedder: Embedder, labels: Sequence[str], estimator: Any, *,
                 multi_label: bool = False, threshold: float | None = None) -> None:
        self.embedder, self.labels, self.estimator = embedder, tuple(labels), estimator
        self.multi_label, self.threshold = multi_label, threshold

    def predict_proba(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        import numpy as np

        vectors = self.embedder.embed_many(list(texts), kind="document", progress=progress)
        if self.multi_label:
            return np.stack([est.predict_proba(vectors)[:, 1] for est in self.estimator], axis=1)
        return self.estimator.predict_proba(vectors)  # classes_ are 0..k-1 in label order

    @classmethod
    def fit(cls, embedder: Embedder, labels: Sequence[str], examples: Sequence[Example], *,
            multi_label: bool = False, threshold: float | None = None) -> LogisticClassifier:
        import numpy as np

        LogisticRegression = require_sklearn("few-shot logistic classification").LogisticRegression  # noqa: N806
        vectors = embedder.embed_many([e.text for e in examples], kind="document")
        targets = label_matrix([e.labels for e in examples], labels)
        if multi_label:
            estimators = []
            for j, label in enumerate(labels):
                y = targets[:, j]
                if y.all() or not y.any():
                    raise InputError(f"label '{label}' needs both examples that carry it and examples that "
                                     "do not, to learn a multi-label logistic model")
                estimators.append(LogisticRegression(max_iter=1000).fit(vectors, y))
            return cls(embedder, labels, estimators, multi_label=True, threshold=threshold)
        if (targets.sum(axis=1) != 1).any():
            raise InputError("single-label examples must carry exactly one label each; use multi-label "
                             "classification for examples with several")
        estimator = LogisticRegression(max_iter=1000).fit(vectors, np.argmax(targets, axis=1))
        return cls(embedder, labels, estimator, threshold=threshold)
