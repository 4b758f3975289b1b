"""Labels that abstain: per-label thresholds chosen on held-out labelled texts, explanations, corrections."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from plait.errors import InputError
from plait.readers.labelled import Example
from plait.runtime import Runtime
from plait.tasks.classifiers import Classifier, Progress
from plait.tasks.classify import ClassifyConfig, classify
from plait.tasks.label_thresholds import NEVER, ThresholdedClassifier, choose_thresholds, held_out_probabilities

LABELS = ("urgent", "other")


def test_the_lowest_threshold_that_reaches_the_precision_is_chosen() -> None:
    # urgent decisions at 0.9, 0.8, 0.7 (right), 0.6 (wrong), 0.55 (right): precision counts one imagined miss.
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.55, 0.45], [0.2, 0.8], [0.3, 0.7], [0.1, 0.9]])
    gold = ["urgent", "urgent", "urgent", "other", "urgent", "other", "other", "other"]
    t = choose_thresholds(p, gold, LABELS, {"urgent": 0.7, "other": 0.9})
    assert t["urgent"] == pytest.approx(0.7)  # 3/(3+1) = 0.75 >= 0.7; at 0.6: 3/5 = 0.6 < 0.7
    assert t["other"] == NEVER  # 4 right of 4: 4/5 = 0.8 < 0.9: not enough evidence for 0.9
    with pytest.raises(InputError):
        choose_thresholds(p[:3], gold, LABELS, {})


class WordClassifier(Classifier):
    """'urgent' when the text says 'down' (probability 0.95) or 'soon' (0.6)."""

    labels = LABELS

    def predict_proba(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        p = [0.95 if "down" in t else 0.6 if "soon" in t else 0.1 for t in texts]
        return np.array([[x, 1 - x] for x in p])


def test_below_its_threshold_a_text_is_unsure_and_urgent_says_why() -> None:
    clf = ThresholdedClassifier(WordClassifier(), {"urgent": 0.9}, explain=["urgent"])
    down, soon, calm = clf.classify(["the server is down again", "reply soon please", "nice weather today"])
    assert down.label == "urgent" and "down" in down.why
    assert soon.label is None and soon.abstained and soon.scores[0].label == "urgent"
    assert calm.label == "other" and calm.why == ()
    with pytest.raises(InputError, match="does not have"):
        ThresholdedClassifier(WordClassifier(), {"spam": 0.5})


def test_cross_validated_probabilities_come_from_classifiers_built_without_the_fold() -> None:
    seen: list[int] = []

    def build(examples: Sequence[Example]) -> Classifier:
        seen.append(len(examples))
        return WordClassifier()

    examples = [Example(f"text {i} {'down' if i % 2 else ''}", ("urgent" if i % 2 else "other",)) for i in range(10)]
    p = held_out_probabilities(build, examples, folds=5)
    assert p.shape == (10, 2) and all(n == 8 for n in seen)


def test_corrections_become_examples_and_the_next_classification_uses_them(fake_models: Runtime,
                                                                           tmp_path: Path) -> None:
    labels = {"invoice": "a bill to pay", "family": "friends and family"}
    folder = tmp_path / "corrections"
    text = "grandma birthday cake party sunday"
    before = classify(text, labels, threshold=None)
    config = ClassifyConfig(labels=labels, corrections=str(folder), thresholds={"family": 0.0, "invoice": 0.0})
    assert config.build(fake_models).classify([text])[0].label == before.label  # no corrections yet
    for i, words in enumerate(["grandma birthday party", "birthday cake for grandma", "party on sunday"]):
        (folder / "family").mkdir(parents=True, exist_ok=True)
        (folder / "family" / f"{i}.txt").write_text(words)
    (folder / "invoice").mkdir()
    (folder / "invoice" / "0.txt").write_text("invoice 4411 due amount payable")
    after = config.build(fake_models).classify([text])[0]
    assert after.label == "family" and after.scores[0].probability > 0.5
    (folder / "spam").mkdir()
    (folder / "spam" / "0.txt").write_text("win money")
    with pytest.raises(InputError, match="spam"):
        config.build(fake_models)
