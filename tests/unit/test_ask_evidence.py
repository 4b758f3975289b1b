"""ask's evidence and checks, with fake models: which sentence answers, what a model may say, the stream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.index import open_index
from plait.index.terms import stems
from plait.models.base import Delta, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from plait.tasks import ask as ask_module
from plait.tasks.ask import ask, ask_stream, cited
from plait.tasks.evidence import (
    Evidence,
    answer_spans,
    focus_word,
    holds_kind,
    nearness,
    numbers,
    question_kind,
    without_possessive,
)
from plait.tasks.grounding import check, is_refusal, keeps

DETAINEES = ("Meanwhile, there has been a mass airlift of detainees from Christmas Island to Nauru. "
             "The second airlift today delivered 180 asylum seekers to Nauru. "
             "The Department of Immigration says there are now 211 detainees remaining on Christmas Island. "
             "A spokesman says a decision regarding their future is yet to be made.")


class Scripted(TextGenerator):
    """A chat model that writes the given text, a word at a time (a stronger model, or a careless one)."""

    def __init__(self, text: str) -> None:
        self.spec = ModelSpec(name="scripted", backend="fake", capabilities=("chat",), source="fake")
        self.text = text
        self.requests: list[GenerationRequest] = []

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        self.requests.append(request)
        words = self.text.split(" ")
        for i, word in enumerate(words):
            yield Delta(word + (" " if i < len(words) - 1 else ""))
        yield Delta("", finish_reason="stop", usage=Usage(10, len(words)))


@pytest.fixture
def news(fake_models: Runtime, tmp_path: Path) -> Runtime:
    root = tmp_path / "news"
    root.mkdir()
    (root / "detainees.txt").write_text(DETAINEES)
    (root / "garden.txt").write_text("Tomatoes grow in the sunny corner of the garden. The shed needs paint.")
    (root / "bikes.txt").write_text("The bike needs new brakes and a chain before the trip to the coast.")
    open_index(fake_models).add([root])
    return fake_models


LOW = 0.05  # the fake embedder's similarities are small: a passage threshold that lets them through


@pytest.fixture
def lenient(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fake embedder's similarities are not all-MiniLM's: let every passage and answer through, so the
    # tests look at what the checks do with them.
    monkeypatch.setattr(ask_module, "UNCERTAIN_SCORE", 0.0)
    monkeypatch.setattr(ask_module, "ANSWER_SCORE", 0.0)
    monkeypatch.setattr(ask_module, "MARGIN", 0.0)


def test_question_kinds() -> None:
    assert question_kind("How many detainees remain on Christmas Island?") == "number"
    assert question_kind("How long was the tape?") == "duration"
    assert question_kind("Who is the coach of the Socceroos?") == "person"
    assert question_kind("Which senate leader was to take over?") == "person"
    assert question_kind("In which country is the summit?") == "place"
    assert question_kind("Which yacht won?") == "name"
    assert question_kind("When does the trip start?") == "time"
    assert question_kind("What gas did they use?") == "other"


def test_numbers_are_compared_as_numbers() -> None:
    assert numbers("3,000 workers and eight fewer deaths, 1.75 per cent") == {"3000", "8", "1.75"}
    assert holds_kind("number", "there are now 211 detainees", "How many detainees remain?") == 1
    assert holds_kind("number", "the detainees remain on the island", "How many detainees remain?") == -1
    assert stems(["remaining detainees", ""]) == [["remain", "detaine"], []]


def test_an_answer_next_to_the_words_asked_about_is_nearer() -> None:
    question = "How many residents left their homes near Hill Top?"
    assert focus_word(question) == stems(["residents"])[0][0]
    assert focus_word("What kind of gun was found?") == "gun" and focus_word("Who won?") is None
    close = "An estimated 500 residents have left their homes for nearby Mittagong."
    far = "Hundreds of firefighters worked through the night while the residents of Hill Top slept in Mittagong."
    spans = answer_spans("number", [close, far], question)
    assert [close[a:b] for a, b in spans[0]][-1].endswith("500")  # spaCy: "An estimated 500"
    resid = {focus_word(question) or ""}
    near_close = nearness(close, stems([close])[0], spans[0], resid, 2.0)
    near_far = nearness(far, stems([far])[0], spans[1], resid, 2.0)
    assert near_close == 1.0 and 0 < near_far < near_close
    assert nearness(close, stems([close])[0], [], resid, 2.0) == 0.0  # nothing of the asked kind


def evidence(text: str, source: int = 1, sentence: int = 3) -> Evidence:
    return Evidence(source, sentence, text, 0.9, 0.6, 0.8, 1)


def test_checks_catch_the_slips_of_small_models() -> None:
    e = [evidence("The Department of Immigration says there are now 211 detainees remaining on Christmas Island."),
         evidence("The second airlift today delivered 180 asylum seekers to Nauru.", sentence=2)]
    question = "How many detainees remain on Christmas Island?"
    good = check("There are now 211 detainees remaining on Christmas Island [1].", e, question)
    assert good.supported and good.cites == ((1, 3),) and "[1]" not in good.sentence
    wrong_number = check("The answer is: 2", e, question)
    assert not wrong_number.supported and "2" in (wrong_number.reason or "")
    invented = check("Minister Ruddock says 211 detainees remain.", e, question)
    assert not invented.supported and "ruddock" in (invented.reason or "")
    added = check("The 211 detainees will be released next month into the community.", e, question)
    assert not added.supported and "words not in the evidence" in (added.reason or "")
    assert is_refusal("The documents do not say.") and not is_refusal(good.sentence)
    assert cited("It is 211.", [(1, 3), (2, 1)]) == "It is 211 [1:3] [2:1]."


def test_a_sentence_that_drops_a_candidate_answer_is_not_the_answer() -> None:
    # The model rephrases one sentence; it may not choose among the numbers or places that sentence gives.
    total = [evidence("Ponting made 126 runs off 151 balls, taking Australia's total to 277.")]
    question = "How many runs did Australia make in total?"
    picked = check("Ponting made 126 runs.", total, question)
    assert not picked.supported and picked.reason == "it leaves out 151, 277, which the evidence gives"
    assert check("Ponting made 126 runs off 151 balls, taking the total to 277.", total, question).supported
    quake = [evidence("The epicentre was at Burakin, 240 kilometres north-east of Perth.")]
    question = "Where was the epicentre of the earthquake?"
    assert "Burakin" in (check("The epicentre was 240 kilometres north-east of Perth.", quake, question).reason or "")
    assert check("The epicentre was at Burakin, north-east of Perth.", quake, question).supported
    # Written another way is still kept: "eight" for 8, a possessive, another case.
    assert keeps("Eight people and Smith's dog", "8") and keeps("smith's dog", "Smith")
    assert not keeps("The 8 people", "80")


def test_a_possessive_name_is_the_name() -> None:
    e = [evidence("Thomas won the final, the team's first title.")]
    assert check("Thomas's team won the final.", e, "Who won the final?").supported  # not "thoma"
    e = [evidence("Thomas’s team won the final on Sunday.")]
    assert check("Thomas won the final.", e, "Who won the final?").supported
    assert [without_possessive(w) for w in ("Thomas's", "Agnes’s", "players'", "boss", "'s")] == \
        ["Thomas", "Agnes", "players", "boss", "'s"]
    assert question_kind("Which players scored?") == "person"


def test_evidence_comes_first_and_a_checked_sentence_is_the_answer(news: Runtime, lenient: None) -> None:
    model = Scripted("There are now 211 detainees remaining on Christmas Island. Most will go home by May.")
    stream = ask_stream("How many detainees remain on Christmas Island?", model=model, min_similarity=LOW, runtime=news)
    # Known before the model writes a word: the sources and the sentence that answers.
    assert stream.found and stream.status == "answered"
    best = stream.evidence[0]
    assert "211 detainees" in best.text and best.source == 1 and best.sentence == 3
    assert [e["type"] for e in stream.events()] == ["sources", "evidence"]
    # The model sees the evidence sentences, not whole passages.
    pieces = [d.text for d in stream]
    assert "211 detainees remaining" in model.requests[0].messages[-1].content  # type: ignore[index]
    answer = stream.answer
    assert "".join(pieces).strip() == answer.text
    assert answer.text == "There are now 211 detainees remaining on Christmas Island [1:3]."
    assert answer.citations == [1] and [c.cites for c in answer.claims] == [[(1, 3)]]
    # The second sentence states what no evidence says: left out, with the reason.
    assert [r.text for r in answer.rejected] == ["Most will go home by May."]
    assert answer.warning is None


def test_an_unsupported_answer_is_replaced_by_the_evidence(news: Runtime, lenient: None) -> None:
    answer = ask("How many detainees remain on Christmas Island?", model=Scripted("The answer is: 2"),
                 min_similarity=LOW, runtime=news)
    assert answer.status == "answered" and "2" not in answer.text.replace("211", "")
    assert answer.text.startswith("“The Department of Immigration says there are now 211 detainees")
    assert answer.text.endswith("[1:3]") and answer.claims[0].quoted
    assert answer.rejected and "number" in answer.rejected[0].reason
    # A refusal when the evidence answers: the evidence is shown.
    refused = ask("How many detainees remain on Christmas Island?", model=Scripted("The documents do not say."),
                  min_similarity=LOW, runtime=news)
    assert "211 detainees" in refused.text and not refused.rejected


def test_weak_evidence_is_marked_and_none_says_the_documents_do_not_say(news: Runtime,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model = Scripted("should not be asked")
    monkeypatch.setattr(ask_module, "UNCERTAIN_SCORE", 0.0)
    monkeypatch.setattr(ask_module, "ANSWER_SCORE", 1.01)  # nothing is sure enough to state
    uncertain = ask("How many detainees remain on Christmas Island?", model=model, min_similarity=LOW, runtime=news)
    assert uncertain.status == "uncertain" and uncertain.found and uncertain.warning
    assert uncertain.text.startswith(ask_module.UNCERTAIN) and "211 detainees" in uncertain.text
    # Two sentences scored alike: a guess between them is not stated; both are shown, with the warning.
    monkeypatch.setattr(ask_module, "ANSWER_SCORE", 0.0)
    monkeypatch.setattr(ask_module, "MARGIN", 1.01)
    close_call = ask("How many detainees remain on Christmas Island?", model=model, min_similarity=LOW, runtime=news)
    assert close_call.status == "uncertain" and close_call.warning and not model.requests
    assert [c.quoted for c in close_call.claims] == [True, True] and close_call.text.count("“") == 2
    monkeypatch.setattr(ask_module, "UNCERTAIN_SCORE", 1.01)
    nothing = ask("How many detainees remain on Christmas Island?", model=model, min_similarity=LOW, runtime=news)
    assert nothing.status == "not_found" and not nothing.found and nothing.text == ask_module.NO_ANSWER
    assert nothing.sources and not model.requests  # the closest passages are listed; no model was asked
    unrelated = ask("quantum chromodynamics lattice", min_similarity=0.9, model=model, runtime=news)
    assert unrelated.status == "not_found" and unrelated.sources == [] and unrelated.text == ask_module.NOT_FOUND


def test_cancelling_keeps_what_was_checked(news: Runtime, lenient: None) -> None:
    model = Scripted("There are now 211 detainees remaining on Christmas Island. " * 3)
    stream = ask_stream("How many detainees remain on Christmas Island?", model=model, min_similarity=LOW, runtime=news)
    first = next(iter(stream))
    assert "211" in first.text
    assert stream.answer.claims  # finishing the answer after one piece keeps it whole
