"""A cluster address where nothing answers fails at once with one line, instead of waiting minutes inside
Ray's own retries; Ray is not even asked."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from plait.distributed.cluster import connect
from plait.errors import ClusterError
from plait.runtime import Runtime
from tests.cli import plait


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed on leaving: nothing listens there any more


@pytest.fixture
def untouched_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    def init(**kwargs: object) -> None:
        raise AssertionError(f"ray.init was called: {kwargs}")

    monkeypatch.setitem(sys.modules, "ray", SimpleNamespace(is_initialized=lambda: False, init=init))


@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}"])
def test_nothing_answering_at_the_address_fails_at_once(form: str, untouched_ray: None) -> None:
    address = form.format(port=_closed_port())
    with pytest.raises(ClusterError, match=r"nothing answers at 127\.0\.0\.1:\d+"):
        connect(address)


def test_index_add_to_an_unreachable_cluster_says_so_in_one_line(tmp_path: Path, fake_models: Runtime,
                                                                  untouched_ray: None,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.txt").write_text("a note")
    code, _, err = plait(capsys, "index", "add", str(tmp_path), "--executor", "ray", "--address",
                         f"127.0.0.1:{_closed_port()}")
    assert code != 0 and len([line for line in err.splitlines() if line.strip()]) == 1, err
    assert "nothing answers at 127.0.0.1:" in err and "Traceback" not in err
