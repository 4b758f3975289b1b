"""classify and plan against the real packaged models: the default embedder (minilm-q8) on real
20-Newsgroups posts, and SmolLM2 (llama.cpp) scoring labels by log-probability."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from plait.models.base import GenerationOptions, TextGenerator
from plait.runtime import Runtime
from plait.tasks.classify import build_classifier, classify
from plait.tasks.llm_labels import LlmClassifier
from plait.tasks.plan import PlanConfig, plan
from tests.corpora import newsgroups

pytestmark = pytest.mark.model
LABELS = ["alt.atheism", "sci.space"]


def sample(n: int, seed: int) -> list[int]:
    gold = [p.label for p in newsgroups()]
    rng = np.random.default_rng(seed)
    return [int(i) for label in LABELS for i in rng.choice([i for i, y in enumerate(gold) if y == label], n,
                                                            replace=False)]


def test_zero_and_few_shot_on_real_posts(runtime: Runtime) -> None:
    posts = newsgroups()
    test = sample(20, seed=7)
    texts, gold = [posts[i].text for i in test], [posts[i].label for i in test]
    zero = classify(texts, LABELS)
    assert np.mean([r.label == g for r, g in zip(zero, gold, strict=True)]) >= 0.85
    train = [i for i in sample(4, seed=8) if i not in set(test)]
    few = classify(texts, examples=[(posts[i].text, posts[i].label) for i in train])
    assert np.mean([r.label == g for r, g in zip(few, gold, strict=True)]) >= 0.85
    assert all(abs(sum(s.probability for s in r.scores) - 1) < 1e-5 for r in few)


def test_llm_scores_are_log_probabilities_and_reuse_the_cache(runtime: Runtime) -> None:
    generator = runtime.model("smollm2", TextGenerator)
    clf = build_classifier(["blue", "green"], method="llm", model=generator)
    assert isinstance(clf, LlmClassifier) and clf.exact
    clf.contextual_calibration = False  # raw log-probabilities for this check
    question = "What colour is the sky on a clear summer day?"
    first = clf.scores([question])[0]
    assert all(math.isfinite(x) and x < 0 for x in first)  # log-probabilities of real continuations
    assert first[0] > first[1]  # "blue" is the likelier answer
    # A generation in between changes the model's context; scores must not depend on what it held.
    generator.complete("Once upon a time", GenerationOptions(max_tokens=8, temperature=0.0))
    again = clf.scores([question])[0]
    assert np.allclose(first, again, atol=1e-3)
    probabilities = clf.predict_proba([question])[0]
    assert abs(probabilities.sum() - 1) < 1e-9
    # Contextual calibration subtracts the scores of a content-free text from every text's scores.
    clf.contextual_calibration = True
    calibrated = clf.scores([question])[0]
    assert clf._bias is not None and np.allclose(calibrated, first - clf._bias, atol=1e-3)


def test_llm_classify_real_posts_single_and_multi_label(runtime: Runtime) -> None:
    post = newsgroups()[sample(1, seed=3)[0]]
    for multi_label in (False, True):
        clf = build_classifier(LABELS, method="llm", model="smollm2", multi_label=multi_label)
        assert isinstance(clf, LlmClassifier)
        clf.max_text_tokens = 96  # the subject and first lines: enough to exercise the real model quickly
        result = clf.classify([post.text])[0]
        assert {s.label for s in result.scores} == set(LABELS)
        assert all(0 <= s.probability <= 1 for s in result.scores)
        if not multi_label:
            assert result.label in LABELS and abs(sum(s.probability for s in result.scores) - 1) < 1e-9


def test_plan_with_llm_extraction(runtime: Runtime) -> None:
    now = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
    result = plan("write the report, 2h, by Friday\nwater the plants", config=PlanConfig(timezone="UTC"),
                  now=now, extractor="llm", model="smollm2", runtime=runtime)
    report = next(t for t in result.tasks if t.title == "write the report")
    # What the rules found stays; the LLM may only fill gaps, within sane bounds.
    assert report.duration == dt.timedelta(hours=2) and report.deadline is not None
    plants = next(t for t in result.tasks if "plants" in t.title)
    assert dt.timedelta(minutes=5) <= plants.duration <= dt.timedelta(days=5)
    assert not result.unscheduled and result.to_ics().startswith(b"BEGIN:VCALENDAR")


def test_corrections_and_thresholds_on_real_posts(runtime: Runtime, tmp_path: Path) -> None:
    """A workflow's classifier with MiniLM: below its threshold a post is unsure; a person's corrections
    (real posts in a folder per label) become examples and thresholds are re-chosen on them."""
    from plait.tasks.classify import ClassifyConfig

    posts = newsgroups()
    labels = {"religion": "an argument about religion, god and atheism", "space": "spaceflight and astronomy"}
    test = sample(15, seed=3)
    texts, gold = [posts[i].text for i in test], ["religion" if posts[i].label == LABELS[0] else "space" for i in test]
    # A threshold above the median confidence: the posts below it come out unsure, the others labelled.
    confidence = sorted(r.scores[0].probability for r in ClassifyConfig(labels=labels).build(runtime).classify(texts))
    bar = (confidence[7] + confidence[8]) / 2
    strict = ClassifyConfig(labels=labels, thresholds={"religion": bar, "space": bar}).build(runtime)
    assert sum(r.abstained for r in strict.classify(texts)) == sum(c < bar for c in confidence) >= 5
    folder = tmp_path / "corrections"
    for i in [i for i in sample(6, seed=4) if i not in set(test)]:
        label = "religion" if posts[i].label == LABELS[0] else "space"
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / f"{i}.txt").write_text(posts[i].text)
    corrected = ClassifyConfig(labels=labels, corrections=str(folder), thresholds={"religion": bar, "space": bar},
                               precision={"religion": 0.7, "space": 0.7}).build(runtime)
    results = corrected.classify(texts)
    answered = [(r.label, g) for r, g in zip(results, gold, strict=True) if r.label is not None]
    assert len(answered) >= 15 and np.mean([a == g for a, g in answered]) >= 0.9
