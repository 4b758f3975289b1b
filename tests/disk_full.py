"""A full disk during `plait index add` and `plait run`, on a small tmpfs mounted in a private mount namespace.

Run as ``unshare -rm python -m tests.disk_full MOUNTPOINT WORKDIR``: it mounts a 3 MB tmpfs for plait's home,
fills it by indexing (then by a workflow writing notes), records what plait said and how it left the home,
makes the disk larger, runs the same commands again, and prints one JSON object for the test to check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.homes import open_db, read_text

REPO = Path(__file__).resolve().parents[1]
BOOT = "import sys; sys.argv[0] = 'plait'; import tests.fakes; from plait.cli.main import run; run(sys.argv[1:])"


# The home is encrypted, as a user's is, with the test run's key (set by tests/conftest.py).
ENV = {"PYTHONPATH": f"{REPO}:{REPO / 'src'}", "PLAIT_KEY": os.environ["PLAIT_KEY"],
       "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}


def plait(home: Path, *args: str) -> dict[str, Any]:
    env = {**ENV, "PLAIT_HOME": str(home), "PLAIT_EMBED_MODEL": "fake-embed", "PLAIT_CHAT_MODEL": "fake-chat",
           "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", BOOT, *args], env=env, capture_output=True, text=True, timeout=300)
    return {"code": done.returncode, "stderr": done.stderr.strip().splitlines()}


def index_state(home: Path) -> dict[str, Any]:
    conn = open_db(home / "plait.db")
    try:
        q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
        return {
            "integrity": q("PRAGMA integrity_check")[0][0],
            "files": dict(q("SELECT state, count(*) FROM index_files GROUP BY state")),
            "chunks": q("SELECT count(*) FROM index_chunks")[0][0],
            "vectors": q("SELECT count(*) FROM index_vectors")[0][0],
            "fts": q("SELECT count(*) FROM index_fts_docsize")[0][0],
            # a document whose chunks are not numbered 0..n-1 lost or doubled some
            "broken_documents": q("SELECT count(*) FROM (SELECT document_id FROM index_chunks GROUP BY document_id "
                                  "HAVING max(position) + 1 != count(*))")[0][0],
            "indexed_without_documents": q("SELECT count(*) FROM index_files f WHERE state = 'indexed' AND NOT "
                                           "EXISTS (SELECT 1 FROM index_documents d WHERE d.file_id = f.id)")[0][0],
            "texts": sorted(r[0] for r in q("SELECT text FROM index_chunks")),
        }
    finally:
        conn.close()


def workflow_state(home: Path) -> dict[str, Any]:
    conn = open_db(home / "plait.db")
    try:
        items = dict(conn.execute("SELECT state, count(*) FROM workflow_items GROUP BY state").fetchall())
        ledger = conn.execute("SELECT count(*) FROM workflow_effects").fetchone()[0]
    finally:
        conn.close()
    notes = home / "output" / "notes" / "notes"
    files = sorted(p.name for p in notes.iterdir()) if notes.exists() else []
    complete = sum(1 for p in notes.glob("*.md") if read_text(p).endswith("END\n")) if notes.exists() else 0
    return {"items": items, "ledger": ledger, "files": len(files), "complete_files": complete,
            "temporary_files": [f for f in files if f.startswith(".")]}


def mount(point: Path, size: str, *, remount: bool = False) -> None:
    options = f"remount,size={size}" if remount else f"size={size}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "plait-test", str(point)], check=True)


def main() -> None:
    point, work = Path(sys.argv[1]), Path(sys.argv[2])
    point.mkdir(parents=True, exist_ok=True)
    mount(point, "3m")
    home = point / "home"
    subprocess.run([sys.executable, "-c", f"import tests.fakes; tests.fakes.fake_runtime(__import__('pathlib')"
                    f".Path({str(home)!r})).close()"], env=ENV, check=True)
    out: dict[str, Any] = {}
    out["index_full"] = plait(home, "index", "add", str(work / "notes"))
    out["index_after_full"] = index_state(home)
    mount(point, "200m", remount=True)
    out["index_again"] = plait(home, "index", "add", str(work / "notes"))
    out["index_after_again"] = index_state(home)

    mount(point, "200m", remount=True)
    used = sum(p.stat().st_size for p in point.rglob("*") if p.is_file())
    mount(point, f"{(used + 2_500_000) // 1024}k", remount=True)  # room for about half the notes
    out["run_full"] = plait(home, "run", str(work / "notes.yml"))
    out["run_after_full"] = workflow_state(home)
    mount(point, "400m", remount=True)
    out["run_again"] = plait(home, "run", str(work / "notes.yml"))
    out["run_after_again"] = workflow_state(home)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
