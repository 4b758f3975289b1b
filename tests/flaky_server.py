"""A fake OpenAI-compatible model server on 127.0.0.1 that fails in each way a real one does.

``mode`` (changeable while it runs) decides how it answers ``/chat/completions``, ``/completions`` and
``/embeddings``; ``/models`` answers while the server is up unless the mode is ``hang`` or ``500``:

- ``ok``: a streamed answer ("Hello from big.") ended by ``data: [DONE]``, or embeddings;
- ``hang``: reads the request and never answers (until the server stops);
- ``500``: an error status with a JSON error body;
- ``malformed``: an event stream whose event is not JSON, embeddings that are not JSON;
- ``drop``: two streamed pieces, then the connection is cut in the middle of the chunked body;
- ``truncate``: two streamed pieces, then a clean end of the body without [DONE] or a finish reason.

A server that refuses connections is :func:`refused_url` (a loopback port nobody listens on).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "big"


def _event(payload: Any) -> bytes:
    return f"data: {json.dumps(payload) if not isinstance(payload, str) else payload}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    server: FlakyServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.count("GET " + self.path)
        if self.path != "/v1/models":
            return self._json(404, {"error": {"message": "not found"}})
        if self.server.mode in ("hang", "500"):
            return self._failing()
        self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})

    def do_POST(self) -> None:  # noqa: N802
        self.server.count("POST " + self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        if self.path not in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
            return self._json(404, {"error": {"message": "not found"}})
        mode = self.server.mode
        if mode in ("hang", "500"):
            return self._failing()
        if self.path.endswith("/embeddings"):
            return self._embeddings(body, mode)
        self._stream(mode)

    def _failing(self) -> None:
        if self.server.mode == "hang":
            self.server.release.wait()
            return
        self._json(500, {"error": {"message": "CUDA out of memory"}})

    def _embeddings(self, body: dict[str, Any], mode: str) -> None:
        if mode == "malformed":
            data = b"<html>502 Bad Gateway</html>"
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        texts = body.get("input") or []
        self._json(200, {"data": [{"index": i, "embedding": [1.0, float(len(t))]} for i, t in enumerate(texts)]})

    def _stream(self, mode: str) -> None:
        pieces = [{"choices": [{"delta": {"content": "Hello "}}]}, {"choices": [{"delta": {"content": "from "}}]}]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        if mode == "truncate":
            self.send_header("connection", "close")
            self.end_headers()
            for piece in pieces:
                self.wfile.write(_event(piece))
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        if mode == "malformed":
            self._chunk(_event("{not json"))
        else:
            for piece in pieces:
                self._chunk(_event(piece))
        if mode == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # cut mid-body: no terminating chunk
            return
        self._chunk(_event({"choices": [{"delta": {"content": "big."}, "finish_reason": "stop"}]}))
        self._chunk(_event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 3}}))
        self._chunk(_event("[DONE]"))
        self.wfile.write(b"0\r\n\r\n")


class FlakyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode = "ok"
        self.release = threading.Event()
        self.requests: list[str] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def count(self, what: str) -> None:
        with self._lock:
            self.requests.append(what)


@contextmanager
def flaky_server() -> Iterator[FlakyServer]:
    server = FlakyServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="flaky-server",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def refused_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
