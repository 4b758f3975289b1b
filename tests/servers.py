"""A real uvicorn server on a free loopback port, in a thread, for tests that need real HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    app: Any
    key: str | None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


@contextmanager
def serve_in_thread(app: Any, key: str | None = None, *, startup_timeout: float = 60.0,
                    graceful_seconds: float = 5.0) -> Iterator[RunningServer]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=graceful_seconds)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", app, key)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        if thread.is_alive():
            raise RuntimeError("the test server did not stop")


def models_sharing_home(tmp_path_factory: Any, shared_models_home: Path, name: str) -> Path:
    """A fresh plait home whose built models (minilm-q8…) are the test session's shared ones."""
    home: Path = tmp_path_factory.mktemp(name)
    (shared_models_home / "models").mkdir(exist_ok=True)
    (home / "models").symlink_to(shared_models_home / "models")
    return home
