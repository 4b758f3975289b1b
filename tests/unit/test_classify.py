"""classify with fake models: zero-/few-shot, multi-label, calibration, abstaining, the Classifier interface,
the LLM grammar path, labelled-example files, the CLI and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from plait.errors import BackendError, InputError, MissingDependency
from plait.models.base import Delta, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.readers.labelled import Example, read_examples
from plait.runtime import Runtime
from plait.tasks.calibration import PlattScaling, TemperatureScaling, expected_calibration_error
from plait.tasks.classifiers import Classifier, LogisticClassifier, PrototypeClassifier
from plait.tasks.classify import TASK, ClassifyConfig, build_classifier, classify
from plait.tasks.llm_labels import LlmClassifier
from tests.cli import plait

LABELS = ["space", "religion"]
EXAMPLES = {
    "space": ["rocket launch orbit nasa", "the shuttle reached orbit", "astronauts on the moon",
              "a rocket engine test"],
    "religion": ["god and faith in church", "atheism and belief in god", "the bible and the church",
                 "prayer faith and god"],
}


def test_zero_shot_from_label_names(fake_models: Runtime) -> None:
    results = classify(["the space rocket", "religion and god"], LABELS)
    assert [r.label for r in results] == ["space", "religion"]
    for r in results:
        assert abs(sum(s.probability for s in r.scores) - 1) < 1e-6
        assert r.scores[0].label == r.label and r.scores[0].probability >= r.scores[1].probability


def test_single_text_gives_one_result_and_descriptions_replace_names(fake_models: Runtime) -> None:
    # The names share no word with the text; the descriptions do.
    result = classify("a rocket in orbit", {"A": "rocket orbit", "B": "church prayer"})
    assert result.label == "A" and result.labels == ("A",)


def test_few_shot_centroids_are_calibrated_on_the_examples(fake_models: Runtime) -> None:
    clf = build_classifier(examples=EXAMPLES)
    assert isinstance(clf, PrototypeClassifier)
    assert clf.labels == ("space", "religion")  # from the examples, in order
    assert isinstance(clf.calibrator, TemperatureScaling) and clf.calibrator.temperature != 0.05
    results = clf.classify(["nasa rocket orbit", "faith in god"])
    assert [r.label for r in results] == ["space", "religion"]


def test_few_shot_examples_as_pairs_and_multi_label(fake_models: Runtime) -> None:
    pairs = [(t, label) for label, texts in EXAMPLES.items() for t in texts]
    pairs += [("god made the rocket and the moon", ["space", "religion"])]
    clf = build_classifier(LABELS, examples=pairs, multi_label=True)
    assert isinstance(clf.calibrator, PlattScaling) and len(clf.calibrator.slope) == 2
    result = clf.classify(["rocket orbit moon"])[0]
    probs = {s.label: s.probability for s in result.scores}
    assert probs["space"] > 0.5 > probs["religion"]
    assert result.labels == ("space",)


def test_logistic_method_single_and_multi_label(fake_models: Runtime) -> None:
    clf = build_classifier(examples=EXAMPLES, method="logistic")
    assert isinstance(clf, LogisticClassifier)
    p = clf.predict_proba(["rocket orbit", "god faith church"])
    assert p.shape == (2, 2) and np.allclose(p.sum(axis=1), 1)
    assert p[0, 0] > 0.5 and p[1, 1] > 0.5
    multi = build_classifier(examples=EXAMPLES, method="logistic", multi_label=True)
    assert multi.multi_label and multi.predict_proba(["rocket"]).shape == (1, 2)


def test_auto_picks_logistic_only_with_many_examples(fake_models: Runtime) -> None:
    assert isinstance(build_classifier(examples=EXAMPLES), PrototypeClassifier)
    many = {label: [f"{t} {i}" for i in range(4) for t in texts] for label, texts in EXAMPLES.items()}
    assert isinstance(build_classifier(examples=many), LogisticClassifier)


def test_multi_label_zero_shot_and_one_label_yes_no(fake_models: Runtime) -> None:
    result = classify("space rocket and religion", LABELS, multi_label=True, threshold=0.0)
    assert set(result.labels) == {"space", "religion"}  # independent probabilities: both kept at 0
    one = classify(["space rocket", "cooking pasta"], ["space"], multi_label=True)
    assert one[0].labels == ("space",)
    assert one[1].abstained and one[1].labels == ()


def test_abstains_below_threshold(fake_models: Runtime) -> None:
    result = classify("nothing in common here", LABELS, threshold=0.99)
    assert result.abstained and result.label is None and result.labels == ()
    assert TASK.to_json(result)["abstained"] is True
    assert len(result.scores) == 2  # the scores are still reported


class KeywordClassifier(Classifier):
    """What a trained model from the tuning issue looks like to classify(): labels + predict_proba."""

    labels = ("urgent", "later")

    def predict_proba(self, texts: Sequence[str], *, progress: object = None) -> np.ndarray:
        urgent = np.array([0.9 if "now" in t else 0.2 for t in texts])
        return np.stack([urgent, 1 - urgent], axis=1)


def test_a_trained_classifier_plugs_in(fake_models: Runtime) -> None:
    results = classify(["do it now", "some day"], classifier=KeywordClassifier(), threshold=0.7)
    assert [r.label for r in results] == ["urgent", "later"]
    assert classify("maybe", classifier=KeywordClassifier(), threshold=0.85).abstained
    with pytest.raises(InputError, match="brings its own labels"):
        classify("x", LABELS, classifier=KeywordClassifier())


@pytest.mark.parametrize(("labels", "kwargs", "message"), [
    ([], {}, "no labels"),
    (None, {}, "no labels"),
    (["only"], {}, "only one label"),
    (["a", "a"], {}, "given twice"),
    (["a", " "], {}, "empty"),
    ("space", {}, "not one string"),
    (LABELS, {"examples": {"space": ["x"], "other": ["y"]}}, "not among the labels"),
    (LABELS, {"examples": {"space": ["rocket"]}}, "no examples for 'religion'"),
    (LABELS, {"examples": {"space": [""], "religion": ["god"]}}, "example text is empty"),
    (LABELS, {"method": "llm", "examples": EXAMPLES}, "zero-shot"),
    (LABELS, {"method": "logistic"}, "learns from examples"),
    (LABELS, {"method": "magic"}, "unknown classification method"),
    (LABELS, {"threshold": 1.5}, "not a probability"),
    (LABELS, {"template": "about labels"}, "must contain {label}"),
])
def test_bad_set_ups_are_clear_errors(fake_models: Runtime, labels: object, kwargs: dict[str, object],
                                      message: str) -> None:
    with pytest.raises(InputError, match=message):
        classify("a text", labels, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("texts", [[""], ["ok", "   "], [None]])
def test_empty_or_non_text_input_is_a_clear_error(fake_models: Runtime, texts: list[object]) -> None:
    with pytest.raises(InputError, match="text #"):
        classify(texts, LABELS)  # type: ignore[arg-type]


def test_no_texts_gives_no_results(fake_models: Runtime) -> None:
    assert classify([], LABELS) == []


def test_config_is_strict_and_builds(fake_models: Runtime) -> None:
    with pytest.raises(ValidationError):
        ClassifyConfig(labels=["a", "b"], lables=["typo"])  # type: ignore[call-arg]
    with pytest.raises(InputError, match="not among the labels"):
        ClassifyConfig(labels=["a", "b"], descriptions={"c": "x"}).build(fake_models)
    with pytest.raises(InputError, match="brings its own labels"):
        ClassifyConfig(labels=["a", "b"], classifier="triage").build(fake_models)
    clf = ClassifyConfig(labels=LABELS, examples=EXAMPLES, method="similarity").build(fake_models)
    assert clf.classify(["rocket orbit"])[0].label == "space"


def test_zero_shot_calibration_refits_the_temperature(fake_models: Runtime) -> None:
    clf = build_classifier(LABELS)
    assert isinstance(clf, PrototypeClassifier)
    before = clf.calibrator
    texts = [t for ts in EXAMPLES.values() for t in ts]
    gold = [label for label, ts in EXAMPLES.items() for _ in ts]
    clf.calibrate(texts, gold)
    assert clf.calibrator != before
    with pytest.raises(InputError, match="not one of the classifier's labels"):
        clf.calibrate(["x"], ["sports"])


# --- calibration maths ------------------------------------------------------------------------------

def test_temperature_scaling_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4000, 3))
    true_t = 0.5
    p = TemperatureScaling(true_t)(scores)
    targets = np.array([rng.choice(3, p=row) for row in p])
    fitted = TemperatureScaling.fit(scores, targets)
    assert abs(fitted.temperature - true_t) < 0.05
    assert np.allclose(TemperatureScaling(2.0)(scores).sum(axis=1), 1)


def test_temperature_does_not_collapse_on_separable_examples() -> None:
    scores = np.array([[0.3, 0.1], [0.1, 0.3], [0.35, 0.05], [0.02, 0.4]])
    fitted = TemperatureScaling.fit(scores, np.array([0, 1, 0, 1]), prior=0.05)
    # Maximum likelihood alone would go to the lower bound (0.001); the prior keeps it near 0.05.
    assert 0.01 < fitted.temperature < 0.05
    assert fitted(scores).max() < 0.99999


def test_platt_scaling_fits_each_label_and_keeps_the_prior_without_information() -> None:
    rng = np.random.default_rng(1)
    s = rng.normal(size=(3000, 2))
    y0 = rng.random(3000) < 1 / (1 + np.exp(-(3 * s[:, 0] - 1)))
    targets = np.stack([y0, np.ones(3000, dtype=bool)], axis=1)
    fitted = PlattScaling.fit(s, targets, prior=PlattScaling(default_slope=7.0, default_offset=-2.0))
    assert abs(fitted.slope[0] - 3) < 0.4 and abs(fitted.offset[0] + 1) < 0.2
    assert fitted.slope[1] == 7.0 and fitted.offset[1] == -2.0  # all positive: nothing to learn


def test_expected_calibration_error() -> None:
    conf = np.full(1000, 0.9)
    assert expected_calibration_error(conf, np.arange(1000) % 10 != 0) < 1e-9  # 90% right at 0.9
    assert abs(expected_calibration_error(conf, np.zeros(1000, dtype=bool)) - 0.9) < 1e-9


def test_calibration_without_scikit_learn_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(MissingDependency, match=r"plait\[classify\]"):
        TemperatureScaling.fit(np.zeros((2, 2)), np.array([0, 1]))


def test_logistic_without_scikit_learn_names_the_extra(fake_models: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(MissingDependency, match=r"plait\[classify\]"):
        build_classifier(examples=EXAMPLES, method="logistic")


# --- the LLM path without log-probabilities: a grammar-constrained choice --------------------------

class JsonChat(TextGenerator):
    """Answers every request with a fixed text, recording the JSON schema it was asked for."""

    def __init__(self, answer: str) -> None:
        self.spec = ModelSpec(name="json-chat", backend="fake", capabilities=("chat",), source="fake")
        self.answer, self.schemas = answer, []  # type: ignore[var-annotated]

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        self.schemas.append(request.options.json_schema)
        yield Delta(self.answer)
        yield Delta("", finish_reason="stop", usage=Usage(1, 1))


def test_llm_choice_is_constrained_to_the_labels(fake_models: Runtime) -> None:
    chat = JsonChat('{"label": "religion"}')
    clf = build_classifier(LABELS, method="llm", model=chat)
    assert isinstance(clf, LlmClassifier) and not clf.exact
    result = clf.classify(["about god"])[0]
    assert result.label == "religion" and result.scores[0].probability > 0.99
    assert chat.schemas[0]["properties"]["label"]["enum"] == LABELS


def test_gguf_model_without_llama_cpp_python_chooses_under_a_grammar(fake_models: Runtime,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # the optional extra is not installed
    chat = JsonChat('{"label": "space"}')
    chat.spec = chat.spec.model_copy(update={"backend": "llamacpp"})
    clf = build_classifier(LABELS, method="llm", model=chat)
    assert isinstance(clf, LlmClassifier) and not clf.exact
    assert clf.classify(["rockets"])[0].label == "space"


def test_llm_multi_label_choice(fake_models: Runtime) -> None:
    clf = build_classifier(LABELS, method="llm", model=JsonChat('{"labels": ["space", "religion"]}'),
                           multi_label=True)
    assert set(clf.classify(["god in space"])[0].labels) == {"space", "religion"}


@pytest.mark.parametrize("answer", ["not json", '{"label": "sports"}', '{"other": 1}'])
def test_llm_answer_outside_the_labels_is_a_backend_error(fake_models: Runtime, answer: str) -> None:
    clf = build_classifier(LABELS, method="llm", model=JsonChat(answer))
    with pytest.raises(BackendError):
        clf.classify(["text"])


def test_llm_classifier_reacquires_its_model_for_each_text(fake_models: Runtime) -> None:
    # The pool may unload a model during a long run; the classifier asks for it again before each text.
    first, reloaded = JsonChat('{"label": "space"}'), JsonChat('{"label": "religion"}')
    handed = iter([first, reloaded])
    clf = LlmClassifier(first, LABELS, reacquire=lambda: next(handed))
    assert [r.label for r in clf.classify(["a", "b"])] == ["space", "religion"]
    assert clf.generator is reloaded and len(first.schemas) == 1 and len(reloaded.schemas) == 1


def test_llm_method_needs_a_text_generator(fake_models: Runtime) -> None:
    with pytest.raises(Exception, match="cannot generate text"):
        build_classifier(LABELS, method="llm", model="fake-embed")


# --- labelled examples from files ------------------------------------------------------------------

def test_read_examples_from_csv_jsonl_json_and_folders(tmp_path: Path) -> None:
    (tmp_path / "ex.csv").write_text('Text,Label\n"rocket, orbit",space\ngod,religion|space\n')
    pairs = [(e.text, e.labels) for e in read_examples(tmp_path / "ex.csv")]
    assert pairs == [("rocket, orbit", ("space",)), ("god", ("religion", "space"))]
    (tmp_path / "ex.jsonl").write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "labels": ["x", "y"]}\n')
    assert [(e.text, e.labels) for e in read_examples(tmp_path / "ex.jsonl")] == [("a", ("x",)), ("b", ("x", "y"))]
    (tmp_path / "ex.json").write_text(json.dumps([{"text": "a", "category": "x"}]))
    assert [(e.text, e.labels) for e in read_examples(tmp_path / "ex.json")] == [("a", ("x",))]
    for label, text in (("space", "rocket"), ("religion", "church")):
        (tmp_path / "folders" / label).mkdir(parents=True)
        (tmp_path / "folders" / label / "one.txt").write_text(text)
    folders = tmp_path / "folders"
    assert read_examples(folders) == [Example("church", ("religion",), source=str(folders / "religion" / "one.txt")),
                                      Example("rocket", ("space",), source=str(folders / "space" / "one.txt"))]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("a.csv", "body,kind\nx,y\n", "no label column"),
    ("a.csv", "text,label\n,x\n", "empty"),
    ("a.jsonl", '{"text": "a"}\n', "label"),
    ("a.jsonl", "{broken\n", "not valid JSON"),
    ("a.json", '[{"text": "", "label": "x"}]', "empty"),
    ("a.txt", "x", "must be .csv"),
    ("a.csv", "text,label\n", "no rows"),
])
def test_bad_example_files_are_clear_errors(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=message):
        read_examples(tmp_path / name)


# --- CLI -------------------------------------------------------------------------------------------

def test_cli_classifies_texts_and_files_as_json(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("the rocket reached orbit")
    code, out, err = plait(capsys, "classify", "-l", "space=rocket orbit", "-l", "religion=god church",
                           "--text", "faith in god", str(tmp_path / "a.txt"), "--json", "-m", "fake-embed")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in rows] == ["religion", "space"]
    assert "source" not in rows[0]  # a literal text needs no name
    assert rows[1]["source"].endswith("a.txt") and {s["label"] for s in rows[1]["scores"]} == {"space", "religion"}


def test_cli_few_shot_from_examples_and_lines(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    examples = tmp_path / "ex.jsonl"
    examples.write_text("\n".join(json.dumps({"text": t, "label": label})
                                  for label, ts in EXAMPLES.items() for t in ts))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"nasa rocket\n\nfaith and god\n")))
    code, out, err = plait(capsys, "classify", "--examples", str(examples), "--lines", "-m", "fake-embed")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith("stdin:1\tspace") and lines[1].startswith("stdin:3\treligion")


def test_cli_bad_input_is_one_line_and_keeps_the_rest(fake_models: Runtime, capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 20)
    (tmp_path / "good.txt").write_text("space rocket")
    (tmp_path / "fine.txt").write_text("religion and god")
    code, out, err = plait(capsys, "classify", "-l", "space", "-l", "religion", "-m", "fake-embed",
                           str(tmp_path / "empty.txt"), str(tmp_path / "binary.txt"), str(tmp_path / "good.txt"),
                           str(tmp_path / "fine.txt"))
    assert code == 4
    assert "good.txt\tspace" in out and "fine.txt\treligion" in out
    assert "empty" in err and "Traceback" not in err
    code, _, err = plait(capsys, "classify", "--text", "x")
    assert code == 4 and "give the labels" in err
    code, _, err = plait(capsys, "classify", "-l", "only", "--text", "x")
    assert code == 4 and "only one label" in err
    code, _, err = plait(capsys, "classify", "-l", "a", "-l", "b", "--method", "nope", "--text", "x")
    assert code == 2 and "unknown method" in err


def test_a_gguf_scorer_is_opened_once_when_classifications_start_together(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    import sys
    import threading
    import types

    from plait.tasks.llm_labels import _LlamaScorer

    opened: list[object] = []
    both = threading.Condition()

    class Llama:  # llama-cpp-python's, as far as the scorer uses it
        metadata: dict[str, str] = {}

        def __init__(self, **kwargs: object) -> None:
            with both:
                opened.append(self)
                both.notify_all()
                # Unsynchronised, the other thread opens its own meanwhile; with the lock it never comes.
                both.wait_for(lambda: len(opened) > 1, timeout=0.5)

        def n_vocab(self) -> int:
            return 10

    llama_cpp = types.ModuleType("llama_cpp")
    llama_cpp.Llama = Llama  # type: ignore[attr-defined]
    chat_format = types.ModuleType("llama_cpp.llama_chat_format")
    chat_format.Jinja2ChatFormatter = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "llama_cpp", llama_cpp)
    monkeypatch.setitem(sys.modules, "llama_cpp.llama_chat_format", chat_format)
    chat = JsonChat("{}")
    (tmp_path / "x.gguf").write_bytes(b"GGUF")
    chat.spec = chat.spec.model_copy(update={"backend": "llamacpp", "source": str(tmp_path / "x.gguf")})
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(_LlamaScorer.of(chat))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 1 and got[0] is got[1] is not None
