"""What the Ray tests need beyond the fakes: a slow embedder and tasks that say where (and how slowly) they
ran, registered as a plugin registers its own, so Ray workers get them the same way (by module name).

Also the loopback check: every socket the Ray processes of this test listen on is on 127.0.0.0/8.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from plait.models.base import EmbedKind
from plait.models.loading import BACKENDS, register_backend
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from plait.settings import Settings
from plait.tasks.registry import Task, TaskRequest, registry
from tests.fakes import FakeEmbed

SLOW_SECONDS_PER_TEXT = 0.002  # a flush of 256 passages: half a second, long enough to be killed in


class SlowEmbed(FakeEmbed):
    """The fake embedder, taking time like a real one (so a worker can be killed while it computes)."""

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        time.sleep(SLOW_SECONDS_PER_TEXT * len(texts))
        return super().embed_batch(texts, kind)


def _load(spec: ModelSpec, settings: Settings, models: object) -> SlowEmbed:
    return SlowEmbed(spec)


if "slow" not in BACKENDS:
    register_backend("slow", _load)

SLOW_EMBED = ModelSpec(name="slow-embed", backend="slow", capabilities=("embed",), source="slow")


def add_slow_embedder(runtime: Runtime) -> None:
    runtime.catalog.add(SLOW_EMBED, replace=True)


class WhereRequest(TaskRequest):
    text: str
    seconds: float = 0.0
    log: str | None = None  # a file each call appends its text to (counts calls across worker processes)


def where(request: WhereRequest) -> dict[str, object]:
    if request.log:
        with open(request.log, "a", encoding="utf-8") as fh:  # one short append: whole lines from any process
            fh.write(request.text + "\n")
    time.sleep(request.seconds)
    return {"text": request.text, "words": len(request.text.split()), "pid": os.getpid()}


WHERE = Task(name="test_where", summary="says which process ran it", request=WhereRequest, result=dict[str, object],
             run=lambda request, ctx: where(request))

if "test_where" not in registry().names():
    registry().declare("test_where", "tests.ray_helpers:WHERE", by="plait's tests")


def non_loopback_listeners(pids: set[int]) -> list[str]:
    """Listening sockets of these processes bound beyond loopback ("0.0.0.0", "::", a network address)."""
    import psutil

    out = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status != psutil.CONN_LISTEN or conn.pid not in pids:
            continue
        host = conn.laddr.ip.removeprefix("::ffff:")
        if not (host.startswith("127.") or host == "::1"):
            out.append(f"{host}:{conn.laddr.port} (pid {conn.pid})")
    return out


def ray_processes() -> set[int]:
    """This process and every process it started (Ray's GCS, raylet, workers, Serve's replicas)."""
    import psutil

    me = psutil.Process(os.getpid())
    return {me.pid, *(p.pid for p in me.children(recursive=True))}


def write_corpus(folder: Path, articles: int = 300, sentences_per_file: int = 6, sentence_files: int | None = None,
                 ) -> int:
    """Real news text as files: the Lee articles, then their sentences a few to a file (at most
    ``sentence_files`` of them). Returns the number of files."""
    from tests.corpora import lee_articles, lee_sentences

    folder.mkdir(parents=True, exist_ok=True)
    texts = list(lee_articles()[:articles])
    sentences = list(lee_sentences())
    grouped = [" ".join(sentences[i:i + sentences_per_file]) for i in range(0, len(sentences), sentences_per_file)]
    texts += grouped[:sentence_files]
    for i, text in enumerate(texts):
        (folder / f"doc-{i:04d}.txt").write_text(text, encoding="utf-8")
    return len(texts)
