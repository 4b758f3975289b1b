"""`plait serve` as a real process: first start creates the local key, it answers, Ctrl-C stops it cleanly.
(Slow for a unit test: a fresh interpreter imports the server stack.)"""

import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model


def test_serve_process_creates_a_local_key_answers_and_stops_cleanly(plait_home: Path) -> None:
    import signal
    import stat
    import subprocess
    import time

    import httpx

    from tests.servers import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "plait", "serve", "--port", str(port), "--no-preload"],
                            stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        key_file = plait_home / "local.key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        key = key_file.read_text().strip()
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    assert f"http://127.0.0.1:{port}" in err and "server stopped" in err and "Traceback" not in err
    log_lines = (plait_home / "logs" / "access.log").read_text().splitlines()
    assert json.loads(log_lines[-1])["status"] == 200
