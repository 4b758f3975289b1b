"""SmolLM2 (GGUF, llama.cpp): real text, streaming, chat template, JSON schema, cancellation."""

import json
import subprocess
import sys

import pytest

import plait
from plait.models.base import GenerationOptions, GenerationRequest, Message, TextGenerator
from plait.runtime import Runtime

pytestmark = pytest.mark.model


@pytest.fixture
def smollm2(runtime: Runtime) -> TextGenerator:
    return runtime.model("smollm2", TextGenerator)


def test_chat_streams_real_text_token_by_token(smollm2: TextGenerator) -> None:
    request = GenerationRequest(messages=(Message("user", "Name three colours."),),
                                options=GenerationOptions(max_tokens=30, temperature=0))
    deltas = list(smollm2.stream(request))
    texts = [d.text for d in deltas if d.text]
    assert len(texts) >= 5  # streamed in many pieces, not one block
    answer = "".join(texts).lower()
    assert any(c in answer for c in ("red", "blue", "green", "yellow"))
    final = deltas[-1]
    assert final.finish_reason in ("stop", "length") and final.usage is not None
    assert final.usage.prompt_tokens > 5 and 0 < final.usage.completion_tokens <= 30


def test_multi_turn_uses_history(smollm2: TextGenerator) -> None:
    history = [Message("user", "My name is Zoltan."), Message("assistant", "Nice to meet you, Zoltan."),
               Message("user", "What is my name?")]
    out = smollm2.chat(history, GenerationOptions(max_tokens=20, temperature=0))
    assert "zoltan" in out.text.lower()


def test_json_schema_output_parses(smollm2: TextGenerator) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"]}
    out = smollm2.chat([Message("user", "Paris is in which country? Answer as JSON.")],
                       GenerationOptions(max_tokens=60, temperature=0, json_schema=schema))
    data = json.loads(out.text)
    assert set(data) == {"city", "country"}


def test_cancel_stops_generation(smollm2: TextGenerator) -> None:
    request = GenerationRequest(prompt="Once upon a time", options=GenerationOptions(max_tokens=200))
    seen = 0
    deltas = []
    for delta in smollm2.stream(request):
        deltas.append(delta)
        if delta.text:
            seen += 1
            if seen == 3:
                request.cancel.set()
    assert deltas[-1].finish_reason == "cancelled" and seen <= 4


def test_seed_makes_sampling_reproducible(smollm2: TextGenerator) -> None:
    opts = GenerationOptions(max_tokens=20, temperature=0.9, seed=42)
    a = smollm2.complete("The weather today is", opts).text
    b = smollm2.complete("The weather today is", opts).text
    assert a == b and a.strip()


def test_public_api_generate(runtime: Runtime) -> None:
    out = plait.generate("Write the word hello.", options=GenerationOptions(max_tokens=10))
    assert out.text.strip()


def test_cli_generate_streams_and_errors(plait_home: object) -> None:
    cli = [sys.executable, "-m", "plait"]
    done = subprocess.run([*cli, "generate", "Say one word.", "--max-tokens", "8", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"].strip()
    bad = subprocess.run([*cli, "generate", "hi", "-m", "nosuch"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "known models" in bad.stderr


def test_corrupt_gguf_says_which_file(runtime: Runtime, tmp_path: object) -> None:
    from pathlib import Path

    from plait.errors import ModelFileError
    from plait.models.catalog import BUILTINS
    from plait.models.loading import load_model

    broken = Path(str(tmp_path)) / "truncated.gguf"
    broken.write_bytes(BUILTINS["smollm2"].local_path().read_bytes()[:4096])  # real header, cut short
    spec = BUILTINS["smollm2"].model_copy(update={"name": "truncated", "source": str(broken), "builtin": False})
    with pytest.raises(ModelFileError, match="truncated.gguf"):
        load_model(spec, runtime.settings)
