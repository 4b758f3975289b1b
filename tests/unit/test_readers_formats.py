"""Each reader on a real file of its format: text, sections that follow structure, metadata, and errors."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest

from plait.errors import InputError
from plait.readers import can_read, read_document, read_documents
from plait.readers.mail import parse_message
from tests.docfiles import BROKEN_FROM_MAIL, BROKEN_PART_MAIL, MAIL, make_docx, make_mailboxes, make_pdf


def test_markdown_sections_by_heading_and_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "plan.md"
    path.write_text("---\ntitle: \"Quarterly plan\"\ndate: 2024-03-05\nauthor: Anna\n---\n"
                    "Intro before headings.\n\n# Budget\n\nSome *emphasis* and [a link](http://x).\n\n"
                    "## Items\n- one\n- two\n\n```py\n# not a heading\nprint(1)\n```\n\n"
                    "| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8")
    doc = read_document(path)
    assert doc.kind == "md" and doc.title == "Quarterly plan"
    assert doc.metadata == {"author": "Anna", "date": "2024-03-05"}
    assert [(s.heading, s.level) for s in doc.sections] == [(None, 0), ("Budget", 1), ("Items", 2)]
    assert doc.sections[1].text == "Some emphasis and a link."  # markup does not leak
    items = doc.sections[2].text
    assert "- one\n- two" in items and "# not a heading" in items and "a | b\n1 | 2" in items
    assert "*" not in doc.text and "](" not in doc.text


def test_html_visible_text_sections_and_meta(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(
        b'<html><head><meta charset="windows-1252"><title>Team news</title>'
        b'<meta name="author" content="Anna Berg">'
        b'<meta property="article:published_time" content="2024-05-01T10:00:00Z">'
        b'<script>var hidden = 1;</script><style>p {}</style></head>'
        b"<body><nav>Home | About</nav><p>Intro <b>bold</b> text.</p><h1>Budget</h1>"
        b"<p>We spent more.<br>Second line.</p><ul><li>one</li><li>two</li></ul>"
        b"<h2>Details</h2><table><tr><th>item</th><th>cost</th></tr><tr><td>tea</td><td>3</td></tr></table>"
        b"<p>Caf\xe9</p></body></html>")
    doc = read_document(path)
    assert doc.title == "Team news"
    assert doc.metadata == {"author": "Anna Berg", "date": "2024-05-01T10:00:00+00:00"}
    assert [(s.heading, s.level) for s in doc.sections] == [(None, 0), ("Budget", 1), ("Details", 2)]
    assert doc.sections[0].text == "Intro bold text."
    assert doc.sections[1].text == "We spent more.\nSecond line.\n- one\n- two"
    assert "item | cost\ntea | 3" in doc.sections[2].text and "Café" in doc.sections[2].text  # cp1252
    assert "hidden" not in doc.text and "Home" not in doc.text


def test_pdf_pages_are_sections(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(make_pdf(["Revenue grew by ten percent.", "Costs fell (a little)."],
                              title="Annual report", author="Anna"))
    doc = read_document(path)
    assert doc.kind == "pdf" and doc.title == "Annual report"
    assert [s.heading for s in doc.sections] == ["Page 1", "Page 2"]
    assert doc.sections[0].text == "Revenue grew by ten percent."
    assert doc.sections[1].text == "Costs fell (a little)."
    assert doc.metadata["author"] == "Anna" and doc.metadata["pages"] == "2"
    assert doc.metadata["date"] == "2024-03-05T10:15:00+01:00"


def test_pdf_errors(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pdf"
    damaged.write_bytes(make_pdf(["some text"])[:200])
    with pytest.raises(InputError, match="damaged"):
        read_document(damaged)
    not_pdf = tmp_path / "notes.pdf"
    not_pdf.write_text("just text")
    with pytest.raises(InputError, match="not a PDF"):
        read_document(not_pdf)
    empty = tmp_path / "scan.pdf"
    empty.write_bytes(make_pdf([""]))
    with pytest.raises(InputError, match="no text layer"):
        read_document(empty)


def test_docx_headings_lists_tables(tmp_path: Path) -> None:
    pytest.importorskip("docx")
    doc = read_document(make_docx(tmp_path / "plan.docx"))
    assert doc.title == "Quarterly plan" and doc.metadata["author"] == "Anna Berg"
    assert [(s.heading, s.level) for s in doc.sections] == [(None, 0), ("Budget", 1), ("Next steps", 2)]
    assert doc.sections[1].text == "We spent more than planned.\n- cut travel\nitem | cost\ntea | 3"
    bad = tmp_path / "bad.docx"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputError, match="damaged"):
        read_document(bad)
    old = tmp_path / "old.docx"
    old.write_bytes(b"\xd0\xcf\x11\xe0 an OLE .doc")
    with pytest.raises(InputError, match="not a .docx"):
        read_document(old)


def test_eml_headers_body_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "message.eml"
    path.write_text(MAIL)
    doc = read_document(path)
    assert doc.kind == "email" and doc.title == "Budget für 2024"
    assert doc.metadata == {
        "sender": "Anna Berg <anna@example.org>",
        "recipients": "Bo Lind <bo@example.com>, carl@example.net, Dee <dee@example.com>",
        "subject": "Budget für 2024", "date": "2024-03-05T10:15:00+01:00",
        "message_id": "abc123@example.org", "attachments": "report.pdf",
    }
    headers, body = doc.sections
    assert headers.heading == "Headers" and "From: Anna Berg <anna@example.org>" in headers.text
    assert body.heading == "Body" and body.text == "Hi Bo,\nPlease send the report by Friday. It cost $1,200."


def test_mbox_and_maildir_yield_each_message(tmp_path: Path) -> None:
    mbox_path, maildir = make_mailboxes(tmp_path)
    for source in (mbox_path, maildir):
        docs = list(read_documents(source))
        assert sorted(d.title or "" for d in docs) == ["Budget für 2024", "Lunch"]
        assert all(d.source.startswith(f"{source}#") for d in docs)
        assert len({d.source for d in docs}) == 2
    assert can_read(maildir) and not can_read(tmp_path)
    with pytest.raises(InputError, match="folder"):
        list(read_documents(tmp_path))
    fake = tmp_path / "fake.mbox"
    fake.write_text("hello, not a mailbox\n")
    with pytest.raises(InputError, match="not an mbox"):
        list(read_documents(fake))


def test_a_malformed_message_does_not_hide_the_rest_of_the_maildir(tmp_path: Path) -> None:
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    for raw in (BROKEN_FROM_MAIL, BROKEN_PART_MAIL, MAIL.encode()):
        box.add(raw)
    docs = list(read_documents(tmp_path / "Maildir"))
    # The broken From header is left out, the rest of its message kept; the unreadable one is skipped.
    assert sorted(d.title or "" for d in docs) == ["Budget für 2024", "Lunch on Friday"]
    assert "sender" not in next(d for d in docs if d.title == "Lunch on Friday").metadata
    with pytest.raises(InputError, match="malformed mail message"):
        parse_message(BROKEN_PART_MAIL, "minutes.eml")


def test_eml_without_headers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.eml"
    path.write_text("just some words\n")
    with pytest.raises(InputError, match="no mail headers"):
        read_document(path)


def test_csv_rows_as_field_value_lines(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text('name,email,amount\nAnna,anna@x.org,3.50\nBo,bo@y.com,"1,200"\n')
    doc = read_document(path)
    assert doc.text.splitlines()[1:] == ["name: Anna; email: anna@x.org; amount: 3.50",
                                         "name: Bo; email: bo@y.com; amount: 1,200"]
    assert doc.metadata == {"columns": "name, email, amount", "rows": "2"}
    many = tmp_path / "many.tsv"
    many.write_text("n\tsquare\n" + "".join(f"{i}\t{i * i}\n" for i in range(60)))
    doc = read_document(many)
    assert [s.heading for s in doc.sections] == ["Rows 1-25", "Rows 26-50", "Rows 51-60"]


def test_json_and_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "trip.json"
    path.write_text(json.dumps({"title": "Trip", "people": ["Anna", "Bo"], "cost": {"total": 12}}))
    doc = read_document(path)
    assert doc.title == "Trip"
    assert [(s.heading, s.text) for s in doc.sections] == [
        ("title", "Trip"), ("people", "- Anna\n- Bo"), ("cost", "total: 12")]
    lines = tmp_path / "rows.jsonl"
    lines.write_text('{"a": 1}\n\n{"a": 2, "b": "x"}\n')
    assert read_document(lines).sections[0].text == "a: 1\na: 2; b: x"
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": 1,,}')
    with pytest.raises(InputError, match="not valid JSON .* line 1"):
        read_document(broken)
    bad_line = tmp_path / "bad.jsonl"
    bad_line.write_text('{"a": 1}\nnope\n')
    with pytest.raises(InputError, match="line 2"):
        read_document(bad_line)


def test_binary_named_as_text_formats_is_refused(tmp_path: Path) -> None:
    junk = bytes(range(256)) * 40
    for name in ("junk.txt", "junk.md", "junk.csv", "junk.json", "junk.html"):
        path = tmp_path / name
        path.write_bytes(junk)
        with pytest.raises(InputError, match="binary"):
            read_document(path)


def test_empty_files(tmp_path: Path) -> None:
    for name in ("e.csv", "e.json", "e.html", "e.eml"):
        path = tmp_path / name
        path.write_text("")
        with pytest.raises(InputError, match="empty"):
            read_document(path)
    empty_txt = tmp_path / "e.txt"
    empty_txt.write_text("")
    assert read_document(empty_txt).text == ""
