"""Workflow files: every problem is reported with its file, line and field, before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from plait.workflows.enabled import bundled
from plait.workflows.errors import SpecError
from plait.workflows.loader import load_workflow


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_workflow(path)
    return [str(p).replace(str(path), "bad.yml") for p in caught.value.problems]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "name: x\ntrigger: {type: manual}\nsteps:\n  - template: 'a\n  - b: [\n")
    assert len(problems) == 1 and problems[0].startswith("bad.yml:") and "invalid YAML" in problems[0]


def test_duplicate_keys_are_reported(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "name: x\ntrigger: {type: manual}\nsteps:\n  - template: a\n    template: b\n")
    assert problems == ["bad.yml:5: steps[0].template: 'template' is given twice; keep one"]


def test_schema_errors_point_at_the_field(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """name: x
trigger: {type: manual}
concurrency: 0
steps:
  - id: a
    template: x
    colour: red
  - foo: 1
""")
    assert "bad.yml:3: concurrency: Input should be greater than or equal to 1" in problems
    assert "bad.yml:7: steps[0].colour: unknown key; remove it or check its spelling" in problems
    assert any(p.startswith("bad.yml:8: steps[1]: a step needs one kind key: task, template") for p in problems)


def test_unknown_steps_options_and_templates_are_found_before_running(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """name: x
trigger:
  type: maildir
  pth: ~/Mail
steps:
  - id: a
    task: sumarize
  - id: b
    task: summarize
    with: {txt: "{{ item.text }}"}
  - id: c
    template: "{{ item.text | upper "
  - id: d
    when: "a ==="
    template: ok
  - sink: file
    with: {path: "x.md", formt: md}
  - sink: carrier_pigeon
  - id: a
    template: again
  - id: item
    template: reserved
""")
    text = "\n".join(problems)
    assert "bad.yml:2: trigger.path: required, but missing" in text
    assert "bad.yml:4: trigger.pth: unknown key" in text
    assert "bad.yml:7: steps[0].task: unknown task 'sumarize'; known tasks: " in text and "summarize" in text
    assert "bad.yml:10: steps[1].with.txt: task 'summarize' has no argument 'txt'; it takes " in text
    assert "bad.yml:12: steps[2].template: template syntax error" in text
    assert "bad.yml:14: steps[3].when: template syntax error" in text
    assert "bad.yml:17: steps[4].with.formt: unknown key" in text
    assert "bad.yml:18: steps[5].sink: unknown sink 'carrier_pigeon'; known sinks: " in text
    assert "bad.yml:19: steps[6].id: step id 'a' is used twice (also at steps[0])" in text
    assert "bad.yml:21: steps[7].id: 'item' is a reserved name" in text


def test_a_default_branch_must_come_last(tmp_path: Path) -> None:
    problems = _problems(tmp_path, """name: x
trigger: {type: manual}
steps:
  - route:
      - steps: [{template: a}]
      - when: "true"
        steps: [{template: b}]
""")
    assert problems == ["bad.yml:5: steps[0].route[0]: a branch without `when` (the default) must be the last; "
                        "the branches after it could never run"]


def test_the_error_message_is_one_line_with_a_count(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("name: x\ntrigger: {type: nope}\nsteps:\n  - task: nope\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_workflow(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}:2: trigger.type: unknown trigger type 'nope'")
    assert "and 1 more problem(s)" in message


def test_the_name_defaults_to_the_file_name_and_ids_are_assigned(tmp_path: Path) -> None:
    path = tmp_path / "my-flow.yml"
    path.write_text("trigger: {type: manual}\nsteps:\n  - task: summarize\n  - template: x\n  - task: summarize\n"
                    "  - sink: file\n    with: {path: a.md}\n", encoding="utf-8")
    wf = load_workflow(path)
    assert wf.name == "my-flow" and [s.step_id for s in wf.steps] == ["summarize", "template_2", "task_3", "file"]
    assert wf.base_dir == tmp_path


@pytest.mark.parametrize("path", bundled(), ids=lambda p: p.stem)
def test_bundled_workflows_validate(path: Path) -> None:
    wf = load_workflow(path)
    assert wf.description.strip() and wf.steps
