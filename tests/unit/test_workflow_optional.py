"""Without the `workflows` extra's libraries, each feature says which extra to install (and a digest
without matplotlib is still written, saying why it has no chart)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from plait.errors import MissingDependency
from plait.runtime import Runtime
from plait.workflows.engine import Engine
from tests import workflow_helpers as h
from tests.homes import read_text


def test_import_plait_workflows_loads_no_optional_library() -> None:
    import subprocess

    code = ("import sys, plait.workflows, plait.cli.workflows\n"
            "print(sorted({'jinja2', 'yaml', 'croniter', 'watchdog', 'feedparser', 'matplotlib', 'icalendar',"
            " 'fastapi'} & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["yaml", "jinja2"])
def test_loading_a_workflow_needs_yaml_and_jinja(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 module: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.setitem(sys.modules, f"{module}.sandbox", None)
    with pytest.raises(MissingDependency, match=r"plait\[workflows\]"):
        from plait.workflows.templates import Templates

        if module == "jinja2":
            Templates()
        else:
            h.workflow(tmp_path, "name: x\ntrigger: {type: manual}\nsteps:\n  - template: x\n")


@pytest.mark.parametrize(("trigger", "module"), [
    ("{type: schedule, cron: '0 7 * * *'}", "croniter"),
    ("{type: feed, url: feed.xml}", "feedparser"),
])
def test_triggers_name_their_extra(tmp_path: Path, fake_models: Runtime, monkeypatch: pytest.MonkeyPatch,
                                   trigger: str, module: str) -> None:
    (tmp_path / "feed.xml").write_text("<rss version='2.0'><channel></channel></rss>")
    wf = h.workflow(tmp_path, f"name: x\ntrigger: {trigger}\nsteps:\n  - template: x\n")
    monkeypatch.setitem(sys.modules, module, None)
    engine = Engine(wf, fake_models)
    engine.state.add_items([], cursor={"last": 0.0}, trigger=wf.trigger.type)  # a schedule seen before
    with pytest.raises(MissingDependency, match=r"plait\[workflows\]"):
        engine.run()


def test_a_digest_without_matplotlib_says_why_it_has_no_chart(tmp_path: Path, fake_models: Runtime,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    wf = h.workflow(tmp_path, """name: d
trigger: {type: manual}
steps:
  - sink: digest
    with: {path: "digest", period: all, group: "{{ item.kind }}"}
""")
    engine = Engine(wf, fake_models)
    engine.submit({"kind": "a", "subject": "one"})
    assert engine.run().done == 1
    md = read_text(fake_models.settings.home / "output" / "d" / "digest.md")
    assert "no chart: install matplotlib (pip install 'plait[workflows]')" in md and "one" in md
