"""generate on the built-in chat model gives the same text through every door: the Python API, the CLI,
OpenAI's /v1/completions, Ollama's /api/generate and a workflow step (greedy, so the text is fixed)."""

from __future__ import annotations

import json

import pytest
import yaml
from fastapi.testclient import TestClient

import plait
from plait.models.base import GenerationOptions
from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from plait.workflows.engine import Engine
from plait.workflows.loader import parse_workflow
from tests.cli import plait as cli
from tests.homes import read_text

pytestmark = pytest.mark.model

PROMPT = "Name three fruits."
TOKENS = 24


def test_generate_gives_the_same_text_through_every_door(runtime: Runtime,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    python = plait.generate(PROMPT, options=GenerationOptions(max_tokens=TOKENS, temperature=0), runtime=runtime).text
    assert len(python.split()) >= 3  # a real answer, not an empty string that would trivially match

    code, out, err = cli(capsys, "generate", PROMPT, "--max-tokens", str(TOKENS), "--temperature", "0", "--json")
    assert code == 0, err
    from_cli = json.loads(out)["text"]

    app = create_app(runtime.settings, runtime=runtime)
    key = ensure_local_key(KeyStore(runtime.store), runtime.settings.home)
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {key}"}) as client:
        openai = client.post("/v1/completions", json={"model": "smollm2", "prompt": PROMPT, "max_tokens": TOKENS,
                                                       "temperature": 0}).json()["choices"][0]["text"]
        ollama = client.post("/api/generate", json={"model": "smollm2", "prompt": PROMPT, "stream": False,
                                                     "options": {"num_predict": TOKENS, "temperature": 0}}
                             ).json()["response"]
        task_route = client.post("/v1/generate", json={"prompt": PROMPT, "max_tokens": TOKENS,
                                                       "temperature": 0}).json()["text"]

    spec = {"name": "doors", "trigger": {"type": "manual"},
            "steps": [{"id": "out", "task": "generate", "with": {"prompt": PROMPT, "max_tokens": TOKENS,
                                                                 "temperature": 0}},
                      {"sink": "file", "with": {"path": "out.json", "data": "{{ out }}"}}]}
    engine = Engine(parse_workflow(yaml.safe_dump(spec), file="doors.yml"), runtime)
    engine.submit({"text": "unused"}, key="k")
    assert engine.run().failed == 0  # type: ignore[attr-defined]
    workflow = json.loads(read_text(runtime.settings.home / "output" / "doors" / "out.json"))["text"]

    assert {"cli": from_cli, "openai": openai, "ollama": ollama, "task route": task_route,
            "workflow": workflow} == dict.fromkeys(("cli", "openai", "ollama", "task route", "workflow"), python)
