"""Ray is an optional extra: without it, every door to it (`index add --executor ray`, `plait run --executor
ray`, a workflow with `executor: ray`, `serve --ray`) stops at once with one line that says how to install it,
before anything is read or written."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plait.runtime import Runtime
from tests.cli import plait

INSTALL = "pip install 'plait[ray]'"


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as when it is not installed


def one_line_install_error(code: int, err: str) -> None:
    assert code == 5, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and INSTALL in lines[0], err
    assert "Traceback" not in err


def test_index_add_on_ray_without_ray_says_how_to_install_it(tmp_path: Path, fake_models: Runtime, no_ray: None,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "note.txt").write_text("The bakery's numbers look good this quarter.")
    one_line_install_error(*plait(capsys, "index", "add", str(docs), "--executor", "ray")[::2])
    assert fake_models.store.query("SELECT count(*) FROM index_files")[0][0] == 0  # nothing was read


WORKFLOW = """
name: on-ray
trigger: {type: manual}
executor: %s
steps:
  - template: "{{ item.text }}"
"""


@pytest.mark.parametrize(("executor", "flag"), [("ray", []), ("local", ["--executor", "ray"])])
def test_a_workflow_on_ray_without_ray_says_how_to_install_it(tmp_path: Path, fake_models: Runtime, no_ray: None,
                                                               capsys: pytest.CaptureFixture[str], executor: str,
                                                               flag: list[str]) -> None:
    wf = tmp_path / "wf.yml"
    wf.write_text(WORKFLOW % executor)
    one_line_install_error(*plait(capsys, "run", str(wf), "--item", '{"text": "hi"}', *flag)[::2])
    assert fake_models.store.query("SELECT count(*) FROM workflow_items")[0][0] == 0


def test_serve_on_ray_without_ray_says_how_to_install_it(fake_models: Runtime, no_ray: None,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from tests.servers import free_port

    one_line_install_error(*plait(capsys, "serve", "--ray", "--port", str(free_port()))[::2])
