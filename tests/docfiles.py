"""Small real documents of each format, written by the libraries (or by hand, for PDF) in a test's folder."""

from __future__ import annotations

import mailbox
from pathlib import Path

MAIL = """From: Anna Berg <anna@example.org>
To: Bo Lind <bo@example.com>, carl@example.net
Cc: Dee <dee@example.com>
Subject: =?utf-8?q?Budget_f=C3=BCr_2024?=
Date: Tue, 5 Mar 2024 10:15:00 +0100
Message-ID: <abc123@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XX"

--XX
Content-Type: text/html; charset=utf-8

<p>Hi Bo,</p><p>Please send the <b>report</b> by Friday. It cost $1,200.</p>
--XX
Content-Type: application/pdf
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

JVBERi0=
--XX--
"""

PLAIN_MAIL = b"""From: Eve <eve@example.org>
To: anna@example.org
Subject: Lunch
Date: Wed, 6 Mar 2024 12:00:00 +0000

Shall we have lunch on Thursday at noon?
"""

# Headers the standard library's mail parser fails on (it raises instead of recording a defect): a From of
# just "<" (the rest of the message is readable), and an attachment name that breaks the body's parsing.
BROKEN_FROM_MAIL = b"From: <\nSubject: Lunch on Friday\n\nSee you there.\n"
BROKEN_PART_MAIL = (b"Subject: Minutes\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
                    b"Content-Type: text/plain\nContent-Disposition: attachment; filename=;!*\n\nhi\n--b--\n")


def make_pdf(pages: list[str], title: str | None = None, author: str | None = None) -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (xref offsets computed)."""
    objects: list[bytes] = []
    n_pages = len(pages)
    # 1: catalog, 2: pages, 3: font, then per page (page, content), then info.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode()
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
                       f"/Resources << /Font << /F1 3 0 R >> >> >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_parts = []
    if title:
        info_parts.append(f"/Title ({title})")
    if author:
        info_parts.append(f"/Author ({author})")
    info_parts.append("/CreationDate (D:20240305101500+01'00')")
    objects.append(f"<< {' '.join(info_parts)} >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


def make_docx(path: Path) -> Path:
    import docx

    d = docx.Document()
    d.core_properties.author = "Anna Berg"
    d.core_properties.title = "Quarterly plan"
    d.add_paragraph("An opening paragraph.")
    d.add_heading("Budget", 1)
    d.add_paragraph("We spent more than planned.")
    d.add_paragraph("cut travel", style="List Bullet")
    table = d.add_table(rows=2, cols=2)
    for (r, c), text in {(0, 0): "item", (0, 1): "cost", (1, 0): "tea", (1, 1): "3"}.items():
        table.cell(r, c).text = text
    d.add_heading("Next steps", 2)
    d.add_paragraph("Hire two people.")
    d.save(str(path))
    return path


def make_mailboxes(folder: Path) -> tuple[Path, Path]:
    """An mbox file and a Maildir folder, each with the two messages above."""
    mbox_path = folder / "inbox.mbox"
    box = mailbox.mbox(str(mbox_path))
    box.add(MAIL.encode())
    box.add(PLAIN_MAIL)
    box.close()
    maildir = mailbox.Maildir(str(folder / "Maildir"), create=True)
    maildir.add(MAIL.encode())
    maildir.add(PLAIN_MAIL)
    return mbox_path, folder / "Maildir"
