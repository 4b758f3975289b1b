"""One door per task: every task of the registry, called through the Python API, the CLI (--json), HTTP and
a one-step workflow on the same input (fake models), gives the same JSON.

The table below must name every registered task: a task added to the registry without a case here fails
``test_every_task_has_a_case``, so the four doors are compared for it too.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from plait.tasks.registry import get_task, registry
from plait.workflows.engine import Engine
from plait.workflows.loader import parse_workflow
from tests.cli import plait
from tests.homes import read_text

TEXT = ("The budget meeting moved to Friday. Anna said the costs rose sharply this quarter. "
        "The rocket launch was a great success. Everyone loved the new design.")

PERSONAL = "Mail anna@example.org or call +44 20 7946 0958 about card 4111 1111 1111 1111."


@dataclass
class Case:
    request: dict[str, Any]
    cli: Callable[[Path], list[str]]  # the command's arguments (without --json), given the test folder
    # Stdin for commands that read turns from it (chat).
    stdin: str | None = None
    # Fields that name the input and legitimately differ by door (the CLI knows the file's name).
    differ: tuple[str, ...] = ()
    needs: tuple[str, ...] = field(default_factory=tuple)


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (8, 6), (250, 10, 10)).save(path, "PNG")
    return path


def _wav(path: Path) -> Path:
    from scipy.io import wavfile

    wavfile.write(path, 16000, (np.sin(np.arange(16000) / 5) * 12000).astype(np.int16))
    return path


def _file(path: Path, make: Callable[[Path], Path]) -> str:
    return base64.b64encode(make(path).read_bytes()).decode()


CASES: dict[str, Case] = {
    "generate": Case({"prompt": "hello there", "temperature": 0},
                     lambda d: ["generate", "hello there", "--temperature", "0"]),
    "chat": Case({"messages": [{"role": "user", "content": "hello there"}], "temperature": 0},
                 lambda d: ["chat", "--temperature", "0"], stdin="hello there\n"),
    "embed": Case({"texts": ["a first text", "another one"]},
                  lambda d: ["embed", "a first text", "another one"]),
    "summarize": Case({"text": TEXT, "sentences": 2}, lambda d: ["summarize", "-t", TEXT, "-s", "2"]),
    "classify": Case({"texts": "the rocket reached orbit", "labels": ["space=rockets orbit", "religion=god faith"]},
                     lambda d: ["classify", "-l", "space=rockets orbit", "-l", "religion=god faith",
                                "--text", "the rocket reached orbit"]),
    "extract": Case({"text": TEXT, "kinds": ["dates", "amounts"], "reference": "2026-03-02T09:00:00"},
                    lambda d: ["extract", "-t", TEXT, "--kind", "dates", "--kind", "amounts",
                               "--reference", "2026-03-02T09:00:00"]),
    "sentiment": Case({"text": TEXT}, lambda d: ["sentiment", "-t", TEXT]),
    "plan": Case({"text": "write the report, 2h, by Friday", "now": "2026-03-02T08:00:00",
                  "config": {"timezone": "UTC"}},
                 lambda d: ["plan", "write the report, 2h, by Friday", "--now", "2026-03-02T08:00:00",
                            "--timezone", "UTC"]),
    "search": Case({"query": "kayak dawn"}, lambda d: ["search", "kayak dawn"], needs=("index",)),
    "ask": Case({"question": "when does the kayak trip start"},
                lambda d: ["ask", "when does the kayak trip start"], needs=("index",)),
    "recommend": Case({"model": "films", "user": "u1", "k": 3},
                      lambda d: ["recommend", "for", "u1", "--model", "films", "-k", "3"], needs=("recommender",)),
    "relevance": Case({"text": TEXT, "interests": ["space rockets", "money and budgets"]},
                      lambda d: ["relevance", TEXT, "--interests", "space rockets", "--interests",
                                 "money and budgets"]),
    "see": Case({"model": "fake-vision", "k": 2}, lambda d: ["see", str(d / "red.png"), "--model", "fake-vision",
                                                            "-k", "2"],
                differ=("source",), needs=("media",)),
    "hear": Case({"model": "fake-ear"}, lambda d: ["hear", str(d / "tone.wav"), "--model", "fake-ear"],
                 differ=("source",), needs=("media",)),
    "speak": Case({"text": "Hello from plait."}, lambda d: ["speak", "Hello from plait.", "-o", str(d / "s.wav")],
                  differ=("out",), needs=("espeak",)),
    "redact": Case({"text": PERSONAL, "names": False}, lambda d: ["redact", PERSONAL, "--no-names"]),
    "explain": Case({"model": "triage", "text": "the overdue invoice for your account", "method": "occlusion"},
                    lambda d: ["explain", "triage", "the overdue invoice for your account", "--method", "occlusion"],
                    needs=("classifier",)),
}


def test_every_task_has_a_case() -> None:
    assert sorted(CASES) == registry().names(by="plait")


def test_every_door_lists_the_same_tasks(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    tasks = set(registry().names(by="plait"))  # tests declare tasks of their own too
    code, out, _ = plait(capsys, "--help")
    assert code == 0
    commands = {line.split()[1] for line in out.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    assert tasks <= commands, f"tasks with no command: {tasks - commands}"
    app = create_app(fake_models.settings, runtime=fake_models)
    routes = {path.removeprefix("/v1/") for path in app.openapi()["paths"]
              if app.openapi()["paths"][path].get("post", {}).get("tags") == ["Tasks"]}
    assert routes >= tasks and not {r for r in routes - tasks if not r.startswith("test_")}
    code, out, _ = plait(capsys, "workflows", "steps")
    section = out.split("tasks:\n", 1)[1].split("workflow functions:", 1)[0]
    listed = {line.split()[0] for line in section.splitlines() if line.strip()}
    assert listed >= tasks and not {t for t in listed - tasks if not t.startswith("test_")}


@pytest.fixture
def world(fake_models: Runtime, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """Fake models, also as the defaults of the runtime the CLI builds from the settings."""
    from plait.models.spec import ModelSpec
    from tests.unit.test_media import media as _  # noqa: F401  (registers the fake-media backend)

    monkeypatch.setenv("PLAIT_EMBED_MODEL", "fake-embed")
    monkeypatch.setenv("PLAIT_CHAT_MODEL", "fake-chat")
    for name, capability in (("fake-vision", "see"), ("fake-ear", "hear")):
        fake_models.catalog.add(ModelSpec(name=name, backend="fake-media", capabilities=(capability,),
                                          source="fake"), replace=True)
    return fake_models


def _prepare(needs: tuple[str, ...], rt: Runtime, folder: Path) -> None:
    """What some tasks need: an index, a tuned classifier, a recommender, media files (each made only when
    the task needs it: tuning and training take seconds)."""
    if "index" in needs:
        from plait.index.core import open_index

        (folder / "notes").mkdir()
        (folder / "notes" / "kayak.txt").write_text("the kayak trip starts at dawn on Saturday")
        (folder / "notes" / "budget.txt").write_text("Anna said the budget rose sharply this quarter")
        open_index(rt).add([folder / "notes"], collection="notes")
    if "classifier" in needs:
        from plait.adapt import tune
        from plait.adapt.config import TuneConfig
        from tests.unit.test_adapt_tune import mail_csv

        tune("triage", mail_csv(folder / "mail.csv"), config=TuneConfig(base="fake-embed", epochs=5), runtime=rt)
    if "recommender" in needs:
        from plait.tasks.recommend import train_recommender
        from tests.unit.test_recommend import FAST, synthetic

        rows, _texts = synthetic(seed=3)
        ratings = folder / "ratings.csv"
        ratings.write_text("user,item,rating\n" + "".join(f"{u},{i},{r:g}\n" for u, i, r in rows))
        train_recommender(ratings, name="films", config=FAST, runtime=rt)
    if "media" in needs:
        _png(folder / "red.png")
        _wav(folder / "tone.wav")


def _normal(data: Any, differ: tuple[str, ...]) -> Any:
    """The JSON with what legitimately varies between runs (timings) and doors (input names) set aside."""
    if isinstance(data, dict):
        return {k: _normal(v, differ) for k, v in data.items() if k not in ("seconds", *differ)}
    if isinstance(data, list):
        return [_normal(v, differ) for v in data]
    return data


def _request(name: str, case: Case, folder: Path) -> dict[str, Any]:
    request = dict(case.request)
    if name == "see":
        request["image"] = _file(folder / "red.png", lambda p: p)
    if name == "hear":
        request["audio"] = _file(folder / "tone.wav", lambda p: p)
    return request


@pytest.mark.parametrize("name", sorted(CASES))
def test_four_doors_give_the_same_json(name: str, world: Runtime, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    case = CASES[name]
    if "espeak" in case.needs and shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed (scripts/system-packages.sh installs it)")
    _prepare(case.needs, world, tmp_path)
    task = get_task(name)
    request = _request(name, case, tmp_path)

    # 1. Python: the task's own library call, through the registry.
    python = task.to_json(task(request, world))

    # 2. The CLI, --json.
    if case.stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin.encode())))
    code, out, err = plait(capsys, *case.cli(tmp_path), "--json")
    assert code == 0, err
    cli = json.loads(out.splitlines()[0])

    # 3. HTTP.
    app = create_app(world.settings, runtime=world)
    key = ensure_local_key(KeyStore(world.store), world.settings.home)
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {key}"}) as client:
        response = client.post(f"/v1/{name}", json=request)
    assert response.status_code == 200, response.text
    http = response.json() if task.render is None else {**python, "wav": base64.b64encode(response.content).decode()}

    # 4. A one-step workflow (its step output, written by a file sink).
    spec = {"name": f"door-{name}", "trigger": {"type": "manual"},
            "steps": [{"id": "out", "task": name, "with": request},
                      {"sink": "file", "with": {"path": "out.json", "data": "{{ out }}"}}]}
    wf = parse_workflow(yaml.safe_dump(spec), file="door.yml")
    engine = Engine(wf, world)
    engine.submit({"text": "unused"}, key="k")
    summary = engine.run()
    assert summary.failed == 0, summary  # type: ignore[attr-defined]
    workflow = json.loads(read_text(world.settings.home / "output" / f"door-{name}" / "out.json"))

    expected = _normal(python, case.differ)
    assert _normal(cli, case.differ) == expected, "CLI"
    assert _normal(http, case.differ) == expected, "HTTP"
    assert _normal(workflow, case.differ) == expected, "workflow"
