"""A run removes the half-written temporary files a killed run left in its output folder, and nothing else."""

from __future__ import annotations

from pathlib import Path

from plait.runtime import Runtime
from plait.workflows.engine import Engine
from tests import workflow_helpers as h
from tests.homes import read_text


def test_a_run_sweeps_what_a_killed_write_left(tmp_path: Path, fake_models: Runtime) -> None:
    wf = h.workflow(tmp_path, "name: t\ntrigger: {type: manual}\nsteps:\n  - sink: file\n"
                              "    with: {path: 'notes/{{ key }}.md', content: 'hi'}\n")
    out = fake_models.settings.home / "output" / "t"
    (out / "digest").mkdir(parents=True)
    killed = out / "digest" / ".all.md.i3er3s7z.tmp"  # a write_atomic cut short by kill -9
    killed.write_text("# half a dig")
    kept = [out / "digest" / "all.md", out / ".hidden-by-the-user.tmp", out / "digest" / ".all.md.keep"]
    for path in kept:
        path.write_text("mine")
    engine = Engine(wf, fake_models)
    engine.submit({"x": 1}, key="a")
    assert engine.run().done == 1
    assert not killed.exists() and all(p.read_text() == "mine" for p in kept)
    assert read_text(out / "notes" / "a.md") == "hi"
