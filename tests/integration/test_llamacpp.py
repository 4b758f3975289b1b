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


NO_END = {0: -100.0, 1: -100.0, 2: -100.0}  # SmolLM2's end-of-text and turn markers: answers run to max_tokens


def _stream_times(model: TextGenerator, prompt: str, out: list[tuple[float, float, int]]) -> None:
    import time

    request = GenerationRequest(prompt=prompt, options=GenerationOptions(max_tokens=24, temperature=0,
                                                                          logit_bias=NO_END))
    first, last, n = None, 0.0, 0
    for delta in model.stream(request):
        if delta.text:
            first = first or time.monotonic()
            last, n = time.monotonic(), n + 1
    out.append((first or 0.0, last, n))


def test_concurrent_requests_share_decode_steps(smollm2: TextGenerator) -> None:
    import threading

    assert smollm2.parallel == 4  # the generation_slots default
    out: list[tuple[float, float, int]] = []
    threads = [threading.Thread(target=_stream_times, args=(smollm2, f"Story {i}: once upon a time", out))
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [n for _, _, n in out] == [24] * 4
    # Decoded together: every answer had begun before any had ended. One at a time, the fourth would start
    # only after the third had finished.
    assert max(first for first, _, _ in out) < min(last for _, last, _ in out)


def test_logit_bias_bans_a_token(smollm2: TextGenerator) -> None:
    prompt = "The capital of France is"
    plain = smollm2.complete(prompt, GenerationOptions(max_tokens=3, temperature=0)).text
    assert plain.strip().startswith("Paris")
    paris = smollm2.server.local("/tokenize", {"content": " Paris"})["tokens"]  # type: ignore[attr-defined]
    banned = smollm2.complete(prompt, GenerationOptions(max_tokens=3, temperature=0,
                                                        logit_bias={paris[0]: -100.0})).text
    assert not banned.strip().startswith("Paris")


def test_next_turn_reads_only_what_is_new(smollm2: TextGenerator) -> None:
    history = [Message("user", "Tell me about tea in two sentences.")]
    first = smollm2.run(GenerationRequest(messages=tuple(history), options=GenerationOptions(max_tokens=32,
                                                                                             temperature=0)))
    history += [Message("assistant", first.text), Message("user", "And coffee?")]
    second = smollm2.run(GenerationRequest(messages=tuple(history), options=GenerationOptions(max_tokens=8,
                                                                                              temperature=0)))
    # The first turn's prompt and answer stay in the slot's KV cache: the second request reads only its tail.
    assert second.usage.cached_tokens >= first.usage.prompt_tokens
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens


def test_engine_listener_is_a_private_socket_behind_a_key(smollm2: TextGenerator) -> None:
    import os
    import stat
    from pathlib import Path

    import httpx

    server = smollm2.server  # type: ignore[attr-defined]
    assert server.listening_address == f"unix://{server.socket}"
    assert stat.S_IMODE(server.socket.parent.stat().st_mode) == 0o700  # only this user can reach the socket
    # No TCP listener in this process: every listening socket of /proc/net/tcp* is someone else's.
    ours = {os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                assert f"socket:[{fields[9]}]" not in ours
    # And the socket itself wants the key.
    transport = httpx.HTTPTransport(uds=str(server.socket))
    with httpx.Client(transport=transport, base_url="http://llama", timeout=30) as client:
        body = {"prompt": "Hi", "max_tokens": 1}
        assert client.post("/v1/completions", json=body).status_code == 401
        assert client.post("/v1/completions", json=body, headers={"Authorization": "Bearer guess"}).status_code == 401
        ok = client.post("/v1/completions", json=body, headers={"Authorization": f"Bearer {server.key}"})
        assert ok.status_code == 200


def test_closing_a_model_removes_its_socket(runtime: Runtime) -> None:
    from plait.models.catalog import BUILTINS
    from plait.models.loading import load_model

    model = load_model(BUILTINS["smollm2"], runtime.settings)
    folder = model.server.socket.parent  # type: ignore[attr-defined]
    assert folder.exists()
    model.close()
    assert not folder.exists()


def test_gguf_embeddings(runtime: Runtime) -> None:
    import numpy as np

    from plait.models.base import Embedder
    from plait.models.catalog import BUILTINS
    from plait.models.loading import load_model

    spec = BUILTINS["smollm2"].model_copy(update={"name": "smollm2-embed", "capabilities": ("embed",),
                                                  "builtin": False})
    embedder = load_model(spec, runtime.settings)
    assert isinstance(embedder, Embedder)
    try:
        vectors = embedder.embed_many(["The cat sat on the mat.", "A cat was sitting on a mat.",
                                       "Quarterly revenue rose by eight percent."])
    finally:
        embedder.close()
    assert vectors.shape == (3, 576)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def _write_lora(path: object, strength: float) -> None:
    """A real GGUF LoRA adapter for SmolLM2-135M (30 blocks, 576 wide): rank 4 on every attention query
    projection, as llama.cpp's converter writes one. ``strength`` 0 makes it a no-op."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string(gguf.Keys.General.TYPE, gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 4.0)
    rng = np.random.default_rng(0)
    for block in range(30):
        writer.add_tensor(f"blk.{block}.attn_q.weight.lora_a", rng.standard_normal((4, 576)).astype(np.float32))
        writer.add_tensor(f"blk.{block}.attn_q.weight.lora_b",
                          (rng.standard_normal((576, 4)) * strength).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_lora_adapter_changes_the_answers(runtime: Runtime, tmp_path: object) -> None:
    from pathlib import Path

    from plait.errors import ModelFileError
    from plait.models.catalog import BUILTINS
    from plait.models.loading import load_model

    pytest.importorskip("gguf")
    folder = Path(str(tmp_path))
    _write_lora(folder / "noop.gguf", 0.0)
    _write_lora(folder / "strong.gguf", 0.5)
    opts = GenerationOptions(max_tokens=12, temperature=0)
    answers = {}
    for name, lora in (("base", None), ("noop", folder / "noop.gguf"), ("strong", folder / "strong.gguf")):
        options = {"lora": str(lora)} if lora else {}
        spec = BUILTINS["smollm2"].model_copy(update={"name": name, "options": options, "builtin": False})
        model = load_model(spec, runtime.settings)
        try:
            answers[name] = model.complete("The capital of France is", opts).text  # type: ignore[union-attr]
        finally:
            model.close()
    assert answers["noop"] == answers["base"]  # the adapter is applied, and a zero update changes nothing
    assert answers["strong"] != answers["base"]
    bad = BUILTINS["smollm2"].model_copy(update={"name": "bad", "options": {"lora": str(folder / "none.gguf")},
                                                 "builtin": False})
    with pytest.raises(ModelFileError, match="none.gguf"):
        load_model(bad, runtime.settings)
