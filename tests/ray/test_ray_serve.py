"""`plait serve --ray` on a real local Ray instance (127.0.0.1 only), with the real packaged models (SmolLM2 for
chat, minilm-q8 for embeddings): deployed as Ray Serve applications, answering the official OpenAI client
through plait's server as the local models do, scaled to two replicas, and shut down.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from plait.distributed import serving
from plait.runtime import Runtime
from plait.serve.app import create_app
from plait.serve.auth import KeyStore, ensure_local_key
from plait.settings import load_settings
from tests.ray_helpers import non_loopback_listeners, ray_processes
from tests.servers import serve_in_thread

pytestmark = [pytest.mark.ray, pytest.mark.model]

QUESTION = [{"role": "user", "content": "Name three colours."}]
TEXTS = ["The bakery's quarterly numbers look good.", "Rockets need fuel to reach orbit.",
         "A cat sleeps in the sun."]


def wait_for(what: str, check: Any, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen in {seconds:.0f} s"
        time.sleep(0.2)


def replica_pids(model: str, calls: int = 40) -> set[int]:
    from ray import serve

    handle = serve.get_deployment_handle(serving.DEPLOYMENT, serving.app_name(model))
    return {int(r.result()) for r in [handle.pid.remote() for _ in range(calls)]}


def ask(url: str, key: str, chat_model: str, embed_model: str) -> tuple[str, list[str], np.ndarray]:
    """Through the OpenAI client: a chat answer, the same answer streamed (its pieces), and embeddings."""
    client = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=120)
    chat = client.chat.completions.create(model=chat_model, messages=QUESTION,  # type: ignore[arg-type]
                                          temperature=0, max_tokens=30)
    assert chat.usage is not None and 0 < chat.usage.completion_tokens <= 30
    stream = client.chat.completions.create(model=chat_model, messages=QUESTION,  # type: ignore[arg-type]
                                            temperature=0, max_tokens=30, stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    embedded = client.embeddings.create(model=embed_model, input=TEXTS)
    return chat.choices[0].message.content or "", pieces, np.array([d.embedding for d in embedded.data])


def same_vectors(got: np.ndarray, expected: np.ndarray) -> None:
    """The same texts' vectors, up to how they were batched: minilm-q8 quantizes activations per batch, so a
    text's vector moves slightly with the texts batched with it (cosine 0.989-0.993 between a text alone and
    in a batch of three, measured; locally too, where a server batches concurrent requests). Ingestion, whose
    batches are the same on Ray, is compared bit for bit (test_ray_index.py)."""
    assert got.shape == expected.shape
    cosines = (got * expected).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosines.min() > 0.98, cosines
    assert list((got @ expected.T).argmax(axis=1)) == list(range(len(got)))  # each nearest its own text


def served_answers(runtime: Runtime) -> tuple[str, list[str], np.ndarray]:
    settings = runtime.settings
    app = create_app(settings, runtime=runtime)
    key = ensure_local_key(KeyStore(runtime.store), settings.home)
    with serve_in_thread(app, key) as server:
        return ask(server.url, key, settings.chat_model, settings.embed_model)


def test_models_served_by_ray_serve_answer_the_openai_client_and_scale(plait_home: Path, ray_instance: Any) -> None:
    import psutil

    from ray import serve

    settings = load_settings(home=plait_home)
    local = Runtime(settings)
    expected_chat, expected_pieces, expected_vectors = served_answers(local)  # the models loaded here
    local.close()
    assert any(c in expected_chat.lower() for c in ("red", "blue", "green", "yellow"))

    runtime = Runtime(settings)
    one = serving.Scaling(replicas=1, worker_cpus=0.5)
    started = time.monotonic()
    served = serving.deploy(runtime, [settings.chat_model, settings.embed_model], one)
    deployed_seconds = time.monotonic() - started
    try:
        assert {s.backend for s in served.values()} == {"rayserve"}
        serving.serve_through(runtime, served)
        chat, pieces, vectors = served_answers(runtime)
        assert chat == expected_chat and pieces == expected_pieces  # the answer the local model gave
        same_vectors(vectors, expected_vectors)
        assert len(replica_pids(settings.embed_model)) == 1
        assert not non_loopback_listeners(ray_processes())

        # Scale the embedding model to two replicas: requests reach both, and answers stay the same.
        started = time.monotonic()
        serving.deploy(runtime, [settings.embed_model], serving.Scaling(replicas=2, worker_cpus=0.5))
        wait_for("a second replica", lambda: serving.replicas(settings.embed_model) == {"RUNNING": 2})
        scaled_seconds = time.monotonic() - started
        pids = replica_pids(settings.embed_model)
        assert len(pids) == 2
        _, _, again = served_answers(runtime)
        same_vectors(again, expected_vectors)
    finally:
        serving.undeploy()  # what `plait serve --ray` does when it stops
        runtime.close()
    wait_for("the replicas to stop", lambda: not any(psutil.pid_exists(p) for p in pids), seconds=60)
    assert not serve.status().applications
    print(f"ray serve: deployed 2 models in {deployed_seconds:.1f} s, scaled to 2 replicas in {scaled_seconds:.1f} s")
