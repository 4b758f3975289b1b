"""Threads: messages grouped by Message-ID, In-Reply-To and References, falling back to the subject."""

from __future__ import annotations

from plait.readers.threads import Message, normalize_subject, thread_ids
from tests.corpora import newsgroups


def test_replies_join_through_a_missing_root_and_ids_stay_stable() -> None:
    msgs = [Message("a", "a@x", "root@x", ("root@x",), "Re: Budget", 1),
            Message("b", "b@x", "a@x", ("root@x", "a@x"), "Re: Budget", 2),
            Message("c", "c@x", "", (), "Lunch?", 3)]
    ids = thread_ids(msgs)
    assert ids["a"] == ids["b"] == "root@x" and ids["c"] != ids["a"]
    assert thread_ids([*msgs, Message("d", "d@x", "b@x", ("root@x", "a@x", "b@x"), "Re: Budget", 4)])["a"] == "root@x"


def test_subject_fallback_only_for_messages_without_headers_and_long_enough_subjects() -> None:
    msgs = [Message("a", "a@x", "", (), "Quarterly budget review", 1),
            Message("b", "b@x", "", (), "RE: AW: [team] Quarterly budget review", 2),
            Message("c", "c@x", "", (), "Re: hi", 3), Message("d", "d@x", "", (), "hi", 4)]
    ids = thread_ids(msgs)
    assert ids["a"] == ids["b"] and ids["c"] != ids["d"]
    assert normalize_subject("Re: Fwd: [list] Budget") == "budget"


def test_real_newsgroup_posts_thread_as_their_references_say() -> None:
    posts = newsgroups()
    msgs = [Message(str(i), p.message_id, p.in_reply_to, p.references, p.subject, float(i))
            for i, p in enumerate(posts)]
    ids = thread_ids(msgs)
    by_root: dict[str, set[str]] = {}
    for i, p in enumerate(posts):
        if p.references:
            by_root.setdefault(p.references[0], set()).add(ids[str(i)])
    # Every post naming the same first reference is in one thread.
    assert by_root and all(len(threads) == 1 for threads in by_root.values())
    assert len(set(ids.values())) < len(posts) - 20


def test_threads_kept_apart_keep_apart_names_without_ids_or_a_telling_subject() -> None:
    # Broken messages (a mail trigger's parse_error items) have no ids and no subject; short subjects
    # ("hi") never thread by subject: each is its own thread, and so has its own name.
    msgs = [Message("a", subject="", time=1), Message("b", subject="", time=2),
            Message("c", subject="Re: hi", time=3), Message("d", subject="hi", time=4),
            Message("e", subject="Quarterly budget review", time=5)]
    ids = thread_ids(msgs)
    assert len(set(ids.values())) == 5
    assert ids["a"] == "a" and ids["e"] == "subject:quarterly budget review"
