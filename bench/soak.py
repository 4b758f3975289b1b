"""Soak: `plait up` for a long while with two workflows on their triggers and the server under mixed load.

Not part of CI: run it by hand (10 minutes by default) and read bench/results/soak.json.

- workflow ``mail``: a Maildir trigger (polled every 2 s) over real 20-Newsgroups posts that keep arriving;
  classify (the default embedder) and a one-line summary, then a note file and a webhook POST to a local
  receiver;
- workflow ``articles``: a folder trigger (polled every 2 s) over real Lee news articles that keep arriving;
  an extractive summary, then a file and a table row;
- clients, all the while: chat completions (16 tokens), embeddings, summaries, /health and /metrics, from
  four threads, each pausing 0.2 s between requests (bounded: they stop with the soak);
- every 5 s: the server process's resident memory, open files and threads.

Pass: no error (a non-2xx answer or a failed connection; 429 "busy" is counted apart), memory and open files
flat (the fitted slope over the second half), every item delivered done once (items, ledger rows, files and
webhook keys all equal to what was delivered).

    python bench/soak.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.corpora import lee_articles  # noqa: E402
from tests.mailboxes import newsgroup_messages, write_maildir  # noqa: E402
from tests.workflow_processes import Receiver, start_plait  # noqa: E402

from _common import make_home, write_results  # noqa: E402

MAIL = """name: mail
trigger: {{type: maildir, path: "{maildir}", poll_seconds: 2}}
steps:
  - id: label
    task: classify
    with: {{texts: "{{{{ item.subject }}}}\\n\\n{{{{ item.body | words(300) }}}}", labels: [religion, space]}}
  - id: gist
    task: summarize
    with: {{text: "{{{{ item.body | words(800) }}}}", style: one-line}}
  - id: note
    sink: file
    with: {{path: "notes/{{{{ key_slug }}}}.md", content: "{{{{ label.label }}}}: {{{{ gist.text }}}}"}}
  - id: hook
    sink: webhook
    with: {{url: "{hook}", json: {{key: "{{{{ key }}}}", label: "{{{{ label.label }}}}"}}}}
"""

ARTICLES = """name: articles
trigger: {{type: folder, path: "{folder}", poll_seconds: 2}}
steps:
  - id: doc
    task: read
    with: {{path: "{{{{ item.path }}}}"}}
  - id: gist
    task: summarize
    with: {{text: "{{{{ doc.text | words(800) }}}}", sentences: 2}}
  - id: summary
    sink: file
    with: {{path: "summaries/{{{{ key_slug }}}}.md", content: "{{{{ gist.text }}}}"}}
  - id: row
    sink: table
    with: {{table: articles, columns: {{name: "{{{{ item.name }}}}"}}}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sample(pid: int) -> dict[str, float]:
    import psutil

    p = psutil.Process(pid)
    return {"t": time.time(), "rss_mb": p.memory_info().rss / 1e6, "open_files": p.num_fds(),
            "threads": p.num_threads()}


def slope(points: list[dict[str, float]], key: str) -> float:
    """Least-squares slope per minute of ``key`` over the second half of the samples."""
    import numpy as np

    half = points[len(points) // 2:]
    if len(half) < 3:
        return 0.0
    t = np.array([p["t"] for p in half]) / 60.0
    v = np.array([p[key] for p in half])
    return float(np.polyfit(t - t[0], v, 1)[0])


def clients(base: str, key: str, stop: threading.Event, tally: Counter[str], errors: list[str]) -> None:
    import httpx

    rng = random.Random(threading.get_ident())
    texts = [a[:600] for a in lee_articles()[:50]]
    headers = {"Authorization": f"Bearer {key}"}
    requests = [
        ("chat", "POST", "/v1/chat/completions",
         lambda: {"messages": [{"role": "user", "content": rng.choice(texts)[:200]}], "max_tokens": 16}),
        ("embeddings", "POST", "/v1/embeddings", lambda: {"input": rng.sample(texts, rng.randint(1, 3))}),
        ("summarize", "POST", "/v1/summarize", lambda: {"text": rng.choice(texts)}),
        ("health", "GET", "/health", lambda: None),
        ("metrics", "GET", "/metrics", lambda: None),
    ]
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        while not stop.is_set():
            name, method, path, body = rng.choice(requests)
            try:
                r = http.request(method, path, json=body()) if method == "POST" else http.get(path)
                if r.status_code == 429:
                    tally[f"{name}_busy"] += 1
                elif r.status_code >= 300:
                    errors.append(f"{name}: {r.status_code} {r.text[:200]}")
                else:
                    tally[name] += 1
            except httpx.HTTPError as exc:
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
            stop.wait(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the soak's home (deleted by default)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="plait-soak-"))
    home = make_home(base, "home")
    maildir, folder = base / "Maildir", base / "articles"
    write_maildir(maildir, [])
    folder.mkdir()
    receiver = Receiver()
    (home / "workflows").mkdir()
    (home / "workflows" / "mail.yml").write_text(MAIL.format(maildir=maildir, hook=receiver.url))
    (home / "workflows" / "articles.yml").write_text(ARTICLES.format(folder=folder))
    port = free_port()
    results: dict[str, Any] = {"minutes": args.minutes, "clients": args.clients, "load_1min_start": os.getloadavg()[0]}
    server = start_plait(home, ["up", "--port", str(port)])
    stop = threading.Event()
    tally: Counter[str] = Counter()
    errors: list[str] = []
    samples: list[dict[str, float]] = []
    delivered = {"mail": 0, "articles": 0}
    try:
        deadline = time.monotonic() + 300
        while not (home / "local.key").exists() or not _ready(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"plait up did not start: {server.communicate()[1].decode()[-2000:]}")
            time.sleep(0.5)
        key = (home / "local.key").read_text().strip()
        workers = [threading.Thread(target=clients, args=(f"http://127.0.0.1:{port}", key, stop, tally, errors))
                   for _ in range(args.clients)]
        for w in workers:
            w.start()
        posts, articles = newsgroup_messages(), list(lee_articles())
        start = time.monotonic()
        end = start + args.minutes * 60
        next_sample = start
        while time.monotonic() < end:
            if server.poll() is not None:
                raise RuntimeError(f"plait up exited: {server.communicate()[1].decode()[-2000:]}")
            if delivered["mail"] < len(posts):  # two posts and one article every few seconds
                write_maildir(maildir, posts[delivered["mail"]:delivered["mail"] + 2])
                delivered["mail"] = min(len(posts), delivered["mail"] + 2)
            if delivered["articles"] < len(articles):
                (folder / f"article-{delivered['articles']:03}.txt").write_text(articles[delivered["articles"]])
                delivered["articles"] += 1
            while time.monotonic() >= next_sample:
                samples.append(sample(server.pid))
                next_sample += 5
            time.sleep(min(4.0, max(0.0, end - time.monotonic())))
        stop.set()
        for w in workers:
            w.join(180)
        # Let the workflows finish what was delivered, then stop plait as a user would (Ctrl-C).
        drained = time.monotonic() + 600
        while time.monotonic() < drained and _done(home) != delivered:
            time.sleep(2)
        results["drain_seconds"] = round(time.monotonic() - (drained - 600), 1)
        server.send_signal(signal.SIGINT)
        server.wait(120)
    finally:
        stop.set()
        if server.poll() is None:
            server.kill()
        receiver.close()
    notes = len(list((home / "output" / "mail" / "notes").glob("*.md")))
    summaries = len(list((home / "output" / "articles" / "summaries").glob("*.md")))
    from plait.security.databases import file_key
    from plait.store.database import connect

    conn = connect(home / "plait.db", file_key(home / "plait.db"))
    items = {wf: dict(conn.execute("SELECT state, count(*) FROM workflow_items WHERE workflow = ? GROUP BY state",
                                   (wf,)).fetchall()) for wf in delivered}
    ledger = dict(conn.execute("SELECT step, count(*) FROM workflow_effects GROUP BY step").fetchall())
    conn.close()
    tables = connect(home / "workflows" / "tables.db", file_key(home / "workflows" / "tables.db"))
    rows = tables.execute("SELECT count(*), count(DISTINCT name) FROM articles").fetchone()
    tables.close()
    keys = Counter(receiver.keys)
    once = (items == {wf: {"done": n} for wf, n in delivered.items()} and notes == delivered["mail"]
            and summaries == delivered["articles"] and rows == (delivered["articles"],) * 2
            and len(keys) == delivered["mail"] and all(c == 1 for c in keys.values())
            and ledger == {"note": delivered["mail"], "hook": delivered["mail"], "summary": delivered["articles"],
                           "row": delivered["articles"]})
    results.update({
        "delivered": delivered, "items": items, "ledger": ledger, "note_files": notes, "summary_files": summaries,
        "table_rows_and_distinct": rows, "webhook_posts": len(receiver.keys), "webhook_distinct_keys": len(keys),
        "every_item_once": once, "requests_ok": dict(tally), "errors": len(errors), "error_examples": errors[:10],
        "samples": samples[:: max(1, len(samples) // 40)],
        "rss_mb_first_last": [round(samples[0]["rss_mb"], 1), round(samples[-1]["rss_mb"], 1)] if samples else None,
        "open_files_first_last": [samples[0]["open_files"], samples[-1]["open_files"]] if samples else None,
        "rss_mb_per_minute_second_half": round(slope(samples, "rss_mb"), 2),
        "open_files_per_minute_second_half": round(slope(samples, "open_files"), 3),
        "server_exit_code": server.returncode, "load_1min_end": os.getloadavg()[0],
    })
    write_results("soak", results)
    if not args.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def _ready(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _done(home: Path) -> dict[str, int]:
    from plait.security.databases import file_key
    from plait.store.database import connect

    conn = connect(home / "plait.db", file_key(home / "plait.db"), readonly=True, timeout=5)
    try:
        rows = conn.execute("SELECT workflow, count(*) FROM workflow_items WHERE state = 'done' GROUP BY workflow")
        out = {"mail": 0, "articles": 0}
        out.update(dict(rows.fetchall()))
        return out
    finally:
        conn.close()


if __name__ == "__main__":
    main()
