"""Tasks from installed packages join the registry through the ``plait.tasks`` entry point group, declared
exactly as the built-ins are; a name taken twice is refused with both declarers named."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from plait.errors import InputError
from plait.runtime import Runtime
from plait.tasks import registry as registry_module
from plait.tasks.builtin import declare_builtin
from plait.tasks.registry import Registry


def _with_plugins(monkeypatch: pytest.MonkeyPatch, *points: tuple[str, str]) -> Registry:
    found = [EntryPoint(name=name, value=value, group="plait.tasks") for name, value in points]
    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda group=None: [p for p in found if p.group == group])
    made = Registry()
    declare_builtin(made)
    registry_module._declare_plugins(made)
    return made


def test_a_plugin_task_is_found_validated_and_run(monkeypatch: pytest.MonkeyPatch, fake_models: Runtime) -> None:
    made = _with_plugins(monkeypatch, ("shout", "tests.plugin_task:TASK"))
    assert "shout" in made.names() and "summarize" in made.names()
    task = made.get("shout")
    assert task.to_json(task({"text": "hello"}, runtime=fake_models)) == {"text": "HELLO"}
    with pytest.raises(InputError, match="shout: volume: unknown field"):
        task.parse({"text": "hi", "volume": 11})  # unknown fields are refused, as for built-ins


def test_a_plugin_cannot_take_a_builtin_name(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="'summarize' is declared twice"):
        _with_plugins(monkeypatch, ("summarize", "tests.plugin_task:TASK"))


def test_a_plugin_whose_target_defines_another_task_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    made = _with_plugins(monkeypatch, ("yell", "tests.plugin_task:TASK"))
    with pytest.raises(ValueError, match="defines task 'shout', declared as 'yell'"):
        made.get("yell")
