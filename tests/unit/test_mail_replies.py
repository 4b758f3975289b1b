"""What a mail's sender wrote, apart from quoted history, attributions, signatures and footers."""

from __future__ import annotations

import pytest

from plait.readers import mail_patterns
from plait.readers.mail import BODY, QUOTED, SIGNATURE, parse_message, written_text
from plait.readers.replies import split_reply
from tests.corpora import newsgroups


def _post(number: int) -> tuple[str, str, str]:
    post = newsgroups()[number]
    return post.text.partition("\n\n")[2], post.sender, post.subject


def test_usenet_reply_with_a_wrapped_attribution_and_a_name_as_signature() -> None:
    reply = split_reply(*_post(0)[:1], sender=_post(0)[1])
    assert reply.text == "Another mistake. Sorry, I should have read alt.,messianic more carefully."
    assert reply.signature == "Benedikt"
    assert reply.answers is not None and reply.answers.author == "Rob Strom"
    assert reply.attributions[0].startswith("In article <1993Apr05.174537.14962@watson.ibm.com>")
    assert "Messianic Jew" in reply.quoted and "Messianic Jew" not in reply.text


def test_interleaved_quotes_keep_every_answer_and_drop_the_box_signature() -> None:
    body, sender, _ = _post(7)
    reply = split_reply(body, sender=sender)
    assert "not due to shadowing effects" in reply.text and "Pluto can shadow Charon" in reply.text
    assert ">" not in reply.text and "writes:" not in reply.text
    assert "gfk39017@uxa.cso.uiuc.edu" in reply.signature and "George Krumins" not in reply.text
    assert len(reply.quotes) == 2


def test_rfc_signature_separator_and_ascii_box() -> None:
    body, sender, _ = _post(4)
    assert split_reply(body, sender=sender).text == "Is HST really _that_ much heavier than a Spacelab ???"
    body, sender, _ = _post(3)
    reply = split_reply(body, sender=sender)
    assert reply.text.endswith("would be supremely arrogant.") and "John David Munch" in reply.signature


TOP_POSTED = {
    "gmail": ("Yes, Thursday works.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Anna Berg <anna@example.org> wrote:\n\n"
              "> Can we meet on Thursday?\n", "Anna Berg"),
    "german": ("Passt mir gut.\n\nAm 02.04.2012 um 18:26 schrieb Anna Berg <anna@example.org>:\n\n"
               "> Treffen wir uns am Donnerstag?\n", "Anna Berg"),
    "outlook": ("Yes, Thursday works.\n\n-----Original Message-----\nFrom: Anna Berg [mailto:anna@example.org]\n"
                "Sent: Monday, April 2, 2012 5:44 PM\nTo: Bo\nSubject: Meeting\n\nCan we meet on Thursday?\n",
                "Anna Berg"),
    "italian": ("Va bene giovedì.\n\nDa: Anna Berg [mailto:anna@example.org]\nInviato: lunedì 2 aprile 2012 "
                "17:44\nA: Bo\nOggetto: Riunione\n\nCi vediamo giovedì?\n", None),
}


@pytest.mark.parametrize("kind", sorted(TOP_POSTED))
def test_history_below_a_marker_is_quoted_in_several_languages(kind: str) -> None:
    body, author = TOP_POSTED[kind]
    reply = split_reply(body, sender="Bo <bo@example.org>", subject="Re: Meeting")
    assert reply.text.split("\n")[0] in ("Yes, Thursday works.", "Passt mir gut.", "Va bene giovedì.")
    assert len(reply.text.split("\n")) == 1, reply.text
    assert reply.quotes and "?" in reply.quotes[0].text
    if author:
        assert reply.answers is not None and author in (reply.answers.author or "")


def test_closing_phrases_and_phone_signatures() -> None:
    body = "Please send the invoice by Friday.\n\nBest regards,\nAnna Berg\nExport Manager\n\nSent from my iPhone\n"
    reply = split_reply(body, sender="Anna Berg <anna@example.org>")
    assert reply.text == "Please send the invoice by Friday."
    assert "Best regards" in reply.signature and "Sent from my iPhone" in reply.signature


def test_a_forward_keeps_the_forwarded_message() -> None:
    body = ("FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Carl <carl@example.org>\n"
            "Date: Mon, 2 Apr 2012\nSubject: Budget\nTo: Bo <bo@example.org>\n\nThe budget is due on Friday.\n")
    reply = split_reply(body, sender="Bo <bo@example.org>", subject="Fwd: Budget")
    assert reply.text == "FYI, see below."
    assert reply.forwarded.get("text") == "The budget is due on Friday."


def test_html_blockquotes_are_quoted_history() -> None:
    html = ("<div>Thursday is fine.</div><div class='gmail_quote'>On Mon, Apr 2, 2012, Anna Berg "
            "&lt;anna@example.org&gt; wrote:<blockquote class='gmail_quote'>Can we meet on Thursday?<br>"
            "Anna</blockquote></div>")
    reply = split_reply(html, sender="Bo <bo@example.org>", html=True)
    assert reply.text == "Thursday is fine."
    assert "Can we meet on Thursday?" in reply.quoted


def test_mail_document_sections_and_threading_metadata() -> None:
    raw = (b"From: Bo <bo@example.org>\nTo: Anna <anna@example.org>\nSubject: Re: Meeting\n"
           b"Date: Tue, 3 Apr 2012 09:00:00 +0200\nMessage-ID: <b2@example.org>\nIn-Reply-To: <a1@example.org>\n"
           b"References: <a0@example.org> <a1@example.org>\n\nThursday at 10 suits me.\n\nOn Mon, Apr 2, 2012, "
           b"Anna <anna@example.org> wrote:\n> Can we meet on Thursday?\n\n-- \nBo\n")
    doc = parse_message(raw, "reply.eml")
    headings = [s.heading for s in doc.sections]
    assert headings == ["Headers", BODY, QUOTED, SIGNATURE]
    assert written_text(doc) == "Thursday at 10 suits me."
    assert doc.metadata["in_reply_to"] == "a1@example.org"
    assert doc.metadata["references"] == "a0@example.org a1@example.org"
    assert doc.metadata["answers"] == "Anna"
    assert "Can we meet" in doc.text  # the whole message, as a person reads it


def test_without_the_libraries_quotes_and_separators_still_work(monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    mail_patterns.library_patterns.cache_clear()
    monkeypatch.setitem(__import__("sys").modules, "quotequail", None)
    try:
        reply = split_reply("I agree.\n\nAnna wrote:\n> It is late.\n\n-- \nBo\n", sender="Bo <bo@example.org>")
        assert reply.text == "I agree." and reply.signature == "Bo" and reply.quotes[0].text == "It is late."
        assert "pip install 'plait[readers]'" in caplog.text
    finally:
        mail_patterns.library_patterns.cache_clear()
