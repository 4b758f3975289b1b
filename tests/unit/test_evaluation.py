"""plait eval with fake models: held-out sentences on a copy of the index, kept questions, the run history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.errors import InputError
from plait.evaluation import evaluate, history, known_items, questions
from plait.evaluation.matching import states
from plait.index import open_index
from plait.models.base import Delta, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.runtime import Runtime

NOTES = {
    "bakery.txt": "The bakery on Mill Street opened in March. It sold 300 loaves of bread on its first Monday. "
                  "Anna Berg, the manager, said the rye bread sold out before noon. Next year the bakery plans "
                  "to open a second shop near the station.",
    "garden.txt": "The community garden has forty plots this season. Tomatoes grow best in the sunny corner "
                  "near the shed. The gardeners meet every Saturday morning to share tools and seeds. A new "
                  "water tank was installed by the council in April.",
    "trip.txt": "The kayak trip starts at dawn from the northern beach. Six paddlers signed up for the whole "
                "week on the lake. The guide, Tom Lund, checks the weather every evening before the next "
                "day. Lunch is packed in dry bags and eaten on the small island.",
}


class QuestionWriter(TextGenerator):
    """Writes the same question for every prompt (the checks decide whether it is kept)."""

    def __init__(self, question: str) -> None:
        self.spec = ModelSpec(name="writer", backend="fake", capabilities=("chat", "complete"), source="fake")
        self.question = question
        self.prompts: list[str] = []

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        prompt = request.prompt or ""
        self.prompts.append(prompt)
        # A completion goes on from the question's first words when the prompt gives them.
        lead = prompt.rsplit("Question:", 1)[-1].strip()
        yield Delta(" " + self.question.removeprefix(lead).strip())
        yield Delta("", finish_reason="stop", usage=Usage(1, 1))


@pytest.fixture
def notes(fake_models: Runtime, tmp_path: Path) -> Runtime:
    root = tmp_path / "notes"
    root.mkdir()
    for name, text in NOTES.items():
        (root / name).write_text(text)
    open_index(fake_models).add([root])
    return fake_models


def test_answers_match_after_normalising() -> None:
    assert states("It sold three hundred and 3,000 loaves, 8 per cent more.", ["3000", "8%"])
    assert states("Eight were suspended.", ["8"]) and not states("It was 80.", ["8"])
    assert not states("anything", [""])


def test_held_out_sentences_leave_the_index_untouched(notes: Runtime) -> None:
    items = known_items.sample(notes, 3, seed=1)
    assert len(items) == 3 and len({i.document_id for i in items}) == 3
    before = notes.store.query("SELECT text FROM index_chunks ORDER BY id")
    with known_items.held_out_copy(notes, items) as copy:
        texts = [r[0] for r in copy.store.query("SELECT text FROM index_chunks ORDER BY id")]
        assert not any(i.query in t for i in items for t in texts)  # held out of the copy
        assert copy.settings.home != notes.settings.home
        folder = copy.settings.home
    assert notes.store.query("SELECT text FROM index_chunks ORDER BY id") == before  # the person's index
    assert not folder.exists()


def test_a_written_question_is_kept_only_when_the_passage_answers_it() -> None:
    sentence = "It sold 300 loaves of bread on its first Monday."
    assert questions.judge("How many loaves of bread did it sell on Monday?", "300", sentence) is None
    assert questions.judge("The bakery sold bread.", "300", sentence) == "not a question"
    assert questions.judge("Did it sell 300 loaves on Monday?", "300", sentence) == "gives its answer away"
    assert questions.judge("How many cakes did the café bake for the wedding?", "300", sentence) == \
        "not about the passage"
    assert questions.judge("Who sold loaves of bread on Monday?", "300", sentence, "CARDINAL") == \
        "asks for another kind of answer"


def test_eval_runs_are_measured_and_kept(notes: Runtime) -> None:
    run = evaluate(notes, queries=3, questions=0)
    known = run.metrics["known_item"]
    assert set(known) >= {"keyword", "vector", "hybrid"} and run.sizes["queries"] == 3
    assert all(0 <= known[m]["mrr@10"] <= 1 for m in ("keyword", "vector", "hybrid"))
    # Three documents only: each held-out sentence's document is among the top 10.
    assert known["hybrid"]["recall@10"] == 1.0
    assert run.settings["chat_model"] == "fake-chat" and "hybrid_vector_weight" in run.settings
    second = evaluate(notes, queries=2, questions=0, seed=3)
    kept = history(notes.store)
    assert [r.id for r in kept] == [second.id, run.id] and kept[1].metrics == json.loads(json.dumps(run.metrics))


def test_questions_from_a_model(notes: Runtime) -> None:
    writer = QuestionWriter("How many loaves of bread did it sell on its first Monday?")
    generated = questions.generate(notes, writer, 2, seed=0, tries_per_question=6)
    # The same question only fits the bakery's sentence with a number in it: every other is thrown away.
    assert all("loaves" in q.sentence for q in generated.kept) and generated.tried >= len(generated.kept)
    assert sum(generated.refused.values()) == generated.tried - len(generated.kept)
    # The model is given the question's first words, by the kind of the chosen answer ("When" for a date),
    # and writes on from them.
    when = QuestionWriter("When did the bakery on Mill Street open?")
    generated = questions.generate(notes, when, 2, seed=0, tries_per_question=6)
    assert [p.rsplit("Question:", 1)[-1].strip() for p in when.prompts] == ["When", "When"]
    assert [(q.question, q.answer) for q in generated.kept] == [("When did the bakery on Mill Street open?", "March")]


def test_bad_requests(notes: Runtime, fake_models: Runtime) -> None:
    with pytest.raises(InputError, match="collection"):
        evaluate(notes, queries=1, questions=0, collection="nope")
    with pytest.raises(InputError, match="negative"):
        evaluate(notes, queries=-1)


def test_empty_index(fake_models: Runtime) -> None:
    with pytest.raises(InputError, match="empty"):
        evaluate(fake_models, queries=1, questions=0)


def test_cli_eval_and_history(notes: Runtime, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.unit.test_cli import plait

    monkeypatch.setenv("PLAIT_EMBED_MODEL", "fake-embed")
    monkeypatch.setenv("PLAIT_CHAT_MODEL", "fake-chat")
    code, out, _ = plait(capsys, "eval", "--queries", "2", "--questions", "0", "--json")
    assert code == 0 and json.loads(out)["metrics"]["known_item"]["hybrid"]["recall@10"] == 1.0
    code, out, _ = plait(capsys, "eval", "history")
    assert code == 0 and "hybrid MRR" in out and "fake-embed" in out
    code, _, err = plait(capsys, "eval", "--queries", "1", "--questions", "0", "-c", "nope")
    assert code == 4 and "no collection 'nope'" in err
