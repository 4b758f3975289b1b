from __future__ import annotations

import pytest

from plait.errors import InputError
from plait.readers.document import Document, Section
from plait.runtime import Runtime
from plait.tasks.sentiment import label_for, sentiment

pytest.importorskip("vaderSentiment")


def test_vader_document_and_sentences() -> None:
    s = sentiment("I love this wonderful product! The delivery was late and the box was damaged. "
                  "It arrived on Monday.", method="vader")
    assert [x.label for x in s.sentences] == ["positive", "negative", "neutral"]
    assert all(-1 <= x.score <= 1 for x in s.sentences) and -1 <= s.score <= 1
    assert s.method == "vader" and s.counts == {"positive": 1, "neutral": 1, "negative": 1}
    assert sentiment("This is a terrible, awful disaster.", method="vader").label == "negative"
    assert sentiment("What a great, happy day!", method="vader").label == "positive"


def test_document_score_weights_longer_sentences() -> None:
    s = sentiment("Great! The long report describes a serious failure that hurt many people badly.",
                  method="vader")
    assert s.sentences[0].score > 0 > s.score


def test_mail_headers_are_not_scored() -> None:
    doc = Document("m.eml", "email", "", sections=(Section("Subject: Terrible awful news", "Headers", 1),
                                                    Section("Thanks, all good here.", "Body", 1)))
    assert sentiment(doc, method="vader").label == "positive"


def test_embedding_method_with_fake_embedder(fake_models: Runtime) -> None:
    # The default method: the more accurate of the two on real reviews (bench/sentiment.py).
    s = sentiment("I love this, it is wonderful. People were killed and many were injured.")
    assert s.method == "embedding:fake-embed"
    assert s.sentences[0].label == "positive" and s.sentences[1].label == "negative"


def test_bad_input() -> None:
    with pytest.raises(InputError, match="empty"):
        sentiment(" \n ... ")
    with pytest.raises(InputError, match="unknown"):
        sentiment("fine", method="guess")  # type: ignore[arg-type]
    assert label_for(0.04) == "neutral" and label_for(-0.05) == "negative"
