"""Models served by Ray Serve deployments (``plait serve --ray``): the same interfaces as local models.

A ``rayserve`` entry names a Serve application (``options.app``) and deployment (``options.deployment``)
running :class:`plait.distributed.serve_replica.ModelReplica`. Loading one asks the deployment what the
model is (its ``info``) and returns an object with the matching interfaces, whose calls go through a
Serve handle: embeddings and classifications are batched by the replicas (``@serve.batch``), answers
are streamed back piece by piece and stop on the replica when the caller cancels.

Calls block (the server runs them in its worker threads, as it does local models).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from plait.distributed.cluster import failure
from plait.errors import PlaitError
from plait.models.base import Delta, Embedder, EmbedKind, GenerationRequest, Model, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.settings import Settings
from plait.tasks.classifiers import Classification, Classifier

if TYPE_CHECKING:
    import numpy as np


_WAITERS = ThreadPoolExecutor(4, thread_name_prefix="plait-rayserve")


def _call(what: str, send: Callable[[], Any]) -> Any:
    """Send a request to a deployment and wait for its answer. Serve refuses to wait inside an event loop
    (the server asks for a token count there, where a local model answers at once), so from one the wait
    happens in a helper thread."""
    def wait() -> Any:
        return send().result()

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return wait()
        return _WAITERS.submit(wait).result()
    except PlaitError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray's errors become plait's at this boundary
        raise failure(exc, what) from exc


class Served(Model):
    """What every served model shares: its handle and the replica's description."""

    def __init__(self, spec: ModelSpec, handle: Any, info: dict[str, Any]) -> None:
        self.spec, self.handle, self.info = spec, handle, info


class ServedGenerator(Served, TextGenerator):
    def count_tokens(self, text: str) -> int:
        return int(_call(f"counting tokens with '{self.spec.name}'", lambda: self.handle.count_tokens.remote(text)))

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        from plait.distributed.serve_replica import request_payload

        pieces = self.handle.options(stream=True).generate.remote(request_payload(self.resolved_request(request)))
        try:
            for piece in pieces:
                if request.cancel.is_set():
                    pieces.cancel()  # the replica's generator stops, and with it the model
                    yield Delta("", finish_reason="cancelled", usage=Usage(0, 0))
                    return
                usage = Usage(*piece["usage"]) if piece.get("usage") else None
                yield Delta(piece["text"], finish_reason=piece.get("finish_reason"), usage=usage)
        except PlaitError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise failure(exc, f"generating with '{self.spec.name}'") from exc

    def resolved_request(self, request: GenerationRequest) -> GenerationRequest:
        """Defaults filled here (this server's settings), so a replica answers as a local model would."""
        from dataclasses import replace

        return replace(request, options=self.resolved(request.options))


class ServedEmbedder(Served, Embedder):
    batch_size = 256  # the replicas batch again across callers; fewer, larger calls travel better
    concurrency = 4  # embed_many's batches go out at once, to as many replicas as there are

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        return _call(f"embedding with '{self.spec.name}'", lambda: self.handle.embed.remote((list(texts), kind)))


class ServedClassifier(Served, Classifier):
    def predict_proba(self, texts: Sequence[str], *, progress: Any = None) -> np.ndarray:
        probabilities = _call(f"classifying with '{self.spec.name}'",
                              lambda: self.handle.predict_proba.remote(list(texts)))
        if progress:
            progress(len(texts))
        return probabilities

    def classify(self, texts: Sequence[str], *, threshold: float | None = None,
                 progress: Any = None) -> list[Classification]:
        from plait.tasks.classifiers import check_texts

        texts = check_texts(texts)
        if not texts:
            return []
        # Decided on the replica: a tuned classifier's own thresholds apply there.
        out: list[Classification] = _call(f"classifying with '{self.spec.name}'",
                                          lambda: self.handle.classify.remote((texts, threshold)))
        if progress:
            progress(len(texts))
        return out


_KINDS: dict[frozenset[str], type[Served]] = {
    frozenset({"generate"}): ServedGenerator,
    frozenset({"embed"}): ServedEmbedder,
    frozenset({"classify"}): ServedClassifier,
}


def _kind(interfaces: frozenset[str]) -> type[Served]:
    if interfaces in _KINDS:
        return _KINDS[interfaces]
    bases = tuple(_KINDS[frozenset({i})] for i in sorted(interfaces) if frozenset({i}) in _KINDS)
    if not bases:
        raise PlaitError("a served model offers none of generate, embed or classify")
    made: type[Served] = type("Served" + "".join(b.__name__.removeprefix("Served") for b in bases), bases, {})
    _KINDS[interfaces] = made
    return made


def load(spec: ModelSpec, settings: Settings) -> Model:
    from plait.distributed.cluster import import_ray

    import_ray()
    from ray import serve

    try:
        handle = serve.get_deployment_handle(str(spec.options["deployment"]), str(spec.options["app"]))
    except Exception as exc:  # noqa: BLE001
        raise failure(exc, f"reaching the deployment of '{spec.name}'") from exc
    info: dict[str, Any] = _call(f"asking the deployment of '{spec.name}' what it serves", handle.info.remote)
    model = _kind(frozenset(info["interfaces"]))(spec, handle, info)
    if isinstance(model, TextGenerator):
        model.context_length = info.get("context_length")
    if isinstance(model, Embedder):
        model.dimensions = int(info["dimensions"])
    if isinstance(model, Classifier):
        model.labels, model.multi_label = tuple(info["labels"]), bool(info["multi_label"])
        model.threshold = info.get("threshold")
    return model
