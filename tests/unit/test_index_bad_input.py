"""Files the index cannot read are skipped with a recorded reason; everything else is indexed."""

from __future__ import annotations

import io
import mailbox
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from plait.index import open_index
from plait.runtime import Runtime
from tests.docfiles import PLAIN_MAIL, make_pdf

ROOT = Path(__file__).resolve().parents[2]


def encrypted_pdf() -> bytes:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["the secret plan"]))))
    writer.encrypt("password", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_bad_folder(root: Path) -> dict[str, str]:
    """A folder with good files and every kind of bad one; returns name → expected words in the reason."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "good.txt").write_text("Quarterly numbers look good for the bakery.")
    (root / "report.pdf").write_bytes(make_pdf(["Revenue of the bakery grew."]))
    (root / "encrypted.pdf").write_bytes(encrypted_pdf())
    (root / "corrupt.pdf").write_bytes(make_pdf(["this will be cut"])[:180])
    (root / "notapdf.pdf").write_text("plain words pretending")
    (root / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (root / "photo.xyz").write_bytes(b"\x89PNG....")
    with open(root / "huge.txt", "wb") as fh:  # sparse: large on paper, no disk used
        fh.truncate(3 * 1024 * 1024)
    (root / "empty.md").write_text("")
    box = mailbox.mbox(str(root / "inbox.mbox"))
    box.add(PLAIN_MAIL)
    box.add(b"this entry has no headers at all\n\njust a broken body\n")
    box.add(PLAIN_MAIL.replace(b"Lunch", b"Dinner").replace(b"lunch", b"dinner"))
    box.close()
    return {
        "encrypted.pdf": "password-protected",
        "corrupt.pdf": "damaged",
        "notapdf.pdf": "not a PDF",
        "binary.txt": "binary",
        "photo.xyz": "cannot read '.xyz'",
        "huge.txt": "over the 2 MB limit",
        "empty.md": "no text to index",
    }


def test_bad_files_are_skipped_with_reasons_and_the_rest_indexed(fake_models: Runtime, tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    expected = make_bad_folder(root)
    index = open_index(fake_models)
    report = index.add([root], max_file_mb=2)
    skipped = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(skipped) == set(expected)
    for name, words in expected.items():
        assert words in skipped[name], (name, skipped[name])
    indexed = {Path(f.path).name for f in index.files() if f.state == "indexed"}
    assert indexed == {"good.txt", "report.pdf"}
    partial = {Path(s.path).name: s.reason for s in report.partial}
    assert list(partial) == ["inbox.mbox"] and "message 2" in partial["inbox.mbox"]
    assert index.store.query("SELECT count(*) FROM index_documents d JOIN index_files f ON f.id = d.file_id "
                             "WHERE f.path LIKE '%inbox.mbox'")[0][0] == 2

    status = index.status()
    assert {Path(s.path).name for s in status.skipped} == set(expected)
    assert [Path(s.path).name for s in status.partial] == ["inbox.mbox"]
    assert status.consistency is not None and status.consistency.consistent

    # Nothing changed: the skips are remembered, not retried.
    again = index.add([root], max_file_mb=2)
    assert again.unchanged == again.units and not again.skipped

    # Fixed files are picked up: a readable replacement; under a larger size limit the big file is read
    # (and found to be all zero bytes).
    (root / "binary.txt").write_text("Now it is text about croissants.")
    fixed = index.add([root], max_file_mb=4)
    assert [(Path(s.path).name, "binary" in s.reason) for s in fixed.skipped] == [("huge.txt", True)]
    names = {Path(f.path).name: f.state for f in index.files()}
    assert names["binary.txt"] == "indexed"
    assert {Path(s.path).name for s in index.status(check=False).skipped} == set(expected) - {"binary.txt"}


def test_a_file_that_becomes_unreadable_loses_its_old_chunks(fake_models: Runtime, tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.txt").write_text("Old words about penguins.")
    index = open_index(fake_models)
    index.add([root])
    (root / "a.txt").write_bytes(b"\x00\x01binary now" * 100)
    report = index.add([root])
    assert [Path(s.path).name for s in report.skipped] == ["a.txt"]
    assert index.store.query("SELECT count(*) FROM index_chunks")[0][0] == 0


def _permission_denied_script(home: Path, root: Path) -> str:
    return (
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.fakes import fake_runtime\n"
        "from plait.index import open_index\n"
        "from pathlib import Path\n"
        f"rt = fake_runtime(Path({str(home)!r}))\n"
        f"r = open_index(rt).add([{str(root)!r}])\n"
        "print(json.dumps({'skipped': [[s.path, s.reason, s.kind] for s in r.skipped], 'new': r.new}))\n"
    )


def test_permission_denied_is_skipped(tmp_path: Path) -> None:
    import json

    root = tmp_path / "p"
    root.mkdir()
    (root / "open.txt").write_text("Anyone can read this.")
    secret = root / "secret.txt"
    secret.write_text("Nobody can read this.")
    os.chmod(secret, 0)
    home = tmp_path / "home"
    command = [sys.executable, "-c", _permission_denied_script(home, root)]
    if os.geteuid() == 0:
        # Root reads anything; in a user namespace, a file owned by an unmapped user is denied even to it.
        if shutil.which("unshare") is None:
            pytest.skip("running as root without unshare: cannot make a file unreadable")
        os.chown(secret, 12345, 12345)
        probe = subprocess.run(["unshare", "-r", "true"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("user namespaces are not available here")
        command = ["unshare", "-r", *command]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["new"] == 1
    [(path, reason, kind)] = result["skipped"]
    assert path == str(secret) and "permission denied" in reason.lower() and kind == "permission"
