"""Real mail for workflow tests and benchmarks: the mini 20-Newsgroups posts as RFC 822 messages,
delivered into a Maildir (or an mbox, or an IMAP server) the way a mail server would."""

from __future__ import annotations

import mailbox
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from tests.corpora import Post, newsgroups


def post_message(post: Post, number: int, *, when: datetime | None = None, threading: bool = False) -> EmailMessage:
    """One post as a mail message: its From and Subject, a Date, a unique Message-ID, the body as text;
    with ``threading``, the post's own Message-ID, References and In-Reply-To headers."""
    _, _, body = post.text.partition("\n\n")
    msg = EmailMessage()
    msg["From"] = post.sender or "unknown@example.org"
    msg["To"] = "me@localhost"
    msg["Subject"] = post.subject or f"post {number}"
    sent = when or datetime(2024, 5, 2, 6, 0, tzinfo=UTC) + timedelta(minutes=number)
    msg["Date"] = format_datetime(sent)
    msg["Message-ID"] = f"<{post.message_id}>" if threading and post.message_id else f"<ng-{number:04d}@plait.test>"
    if threading and post.references:
        msg["References"] = " ".join(f"<{r}>" for r in post.references)
    if threading and (post.in_reply_to or post.references):
        msg["In-Reply-To"] = f"<{post.in_reply_to or post.references[-1]}>"
    msg.set_content(body.strip() or "(empty)")
    return msg


def newsgroup_messages(limit: int | None = None, *, threading: bool = False) -> list[EmailMessage]:
    posts = newsgroups()[:limit] if limit else newsgroups()
    return [post_message(p, i, threading=threading) for i, p in enumerate(posts)]


def write_maildir(folder: Path, messages: Iterable[EmailMessage]) -> list[str]:
    """Deliver ``messages`` into a Maildir at ``folder`` (created); returns their Maildir keys."""
    box = mailbox.Maildir(str(folder), create=True)
    try:
        return [box.add(m) for m in messages]
    finally:
        box.close()


def write_mbox(path: Path, messages: Iterable[EmailMessage]) -> None:
    box = mailbox.mbox(str(path), create=True)
    try:
        box.lock()
        for m in messages:
            box.add(m)
        box.flush()
        box.unlock()
    finally:
        box.close()


__all__ = ["newsgroup_messages", "post_message", "write_maildir", "write_mbox"]
