"""GGUF models through llama.cpp's own server loop, in process (the ``xllamacpp`` binding): chat with the
model's chat template, completion, JSON-schema output, embeddings, and LoRA adapters (GGUF) on top.

One loaded model is one llama.cpp server context with ``generation_slots`` sequence slots. Requests that
run at the same time share every decode step (continuous batching: one batch holds the next token of
each active sequence), and a prompt is read in chunks of ``prompt_chunk_tokens`` between decode steps,
so a long prompt delays the others by one chunk at a time rather than by its whole length. Each slot
keeps its KV cache after a request, and llama.cpp sends a request to the slot holding the longest common
prefix (plus a RAM cache of evicted prompts): the next turn of a conversation reads only what is new.

The binding also starts llama.cpp's HTTP listener, which plait does not use. It is bound to a Unix
socket inside a private (0700) temporary folder, not to a TCP port, and requires a random key that
never leaves this process: no other user or program on the machine can reach the model through it.

The binding is a prebuilt wheel (no compiler needed). llama-cpp-python, which compiles, is still used
where plait needs llama.cpp's C API directly: exact label scoring from logits (``tasks/llm_labels.py``)
and GGUF requantization (``compress/gguf.py``); both are optional (the ``llama-cpp-python`` extra).
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.errors import BackendError, ContextTooLong, InputError, MissingDependency, ModelFileError
from plait.models.base import Delta, Embedder, EmbedKind, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np

POLL_SECONDS = 0.05  # how often a waiting stream looks at its cancel flag
_DONE = object()


def wait_passively() -> None:
    """Make OpenMP's threads sleep, not spin, between parallel regions (a user's own setting wins).

    llama.cpp's OpenMP threads spin while waiting by default, which starves every other thread (and
    process) on a small machine: prompt evaluation was measured 5-50x slower beside other work, and in the
    server, beside its event loop. OpenMP reads this once, when the first library using it loads (PyTorch
    may be that library, before llama.cpp), so entry points call this first thing.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _xllamacpp() -> Any:
    wait_passively()
    try:
        import xllamacpp
    except ImportError as exc:
        raise MissingDependency("GGUF models (llama.cpp)", extra="llm", package="xllamacpp") from exc
    return xllamacpp


def lora_adapters(spec: ModelSpec) -> list[tuple[Path, float]]:
    """The entry's LoRA adapters (``lora``: a GGUF adapter file or a list of them; ``lora_scale``: their
    strength, 1.0 by default), applied by llama.cpp on top of the base weights, each file checked."""
    value = spec.options.get("lora") or []
    paths = [value] if isinstance(value, str) else list(value)
    scale = float(spec.options.get("lora_scale", 1.0))
    out = []
    for item in paths:
        path = Path(str(item)).expanduser()
        if not path.is_file():
            raise ModelFileError(path, "(a LoRA adapter of this model) does not exist",
                                 f"fix or remove the lora option of '{spec.name}' (`plait models add --lora`)")
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise ModelFileError(path, "is not a GGUF file", "convert the adapter to GGUF "
                                     "(llama.cpp's convert_lora_to_gguf.py) and add the model again")
        out.append((path, scale))
    return out


def slots(spec: ModelSpec, settings: Settings) -> int:
    """Requests a llama.cpp model decodes at once: the entry's own ``slots`` option, else the setting."""
    return max(1, int(spec.options.get("slots", settings.generation_slots)))


class LlamaServer:
    """A llama.cpp server context for one GGUF file, reachable only from this process."""

    def __init__(self, spec: ModelSpec, settings: Settings, *, embedding: bool = False,
                 pooling: str | None = None) -> None:
        x = _xllamacpp()
        self.spec = spec
        self.slots = slots(spec, settings)
        self.context_length = int(spec.options.get("n_ctx", settings.context_length))
        self.key = secrets.token_urlsafe(32)
        self._folder = Path(tempfile.mkdtemp(prefix="plait-llama-"))  # mkdtemp makes it 0700
        # Removed on close, or when the process exits with the model still loaded.
        self._remove_folder = weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
        self.socket = self._folder / "llama.sock"
        path = spec.local_path()
        params = x.CommonParams()
        params.model.path = str(path)
        # Each slot gets context_length tokens of its own KV cache (the total is split between slots).
        params.n_parallel = self.slots
        params.n_ctx = self.context_length * self.slots
        self.threads = threads = self.threads_for(settings)
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        if embedding:
            # llama.cpp embeds a text in one micro-batch: it must hold a whole input.
            params.embedding = True
            params.n_batch = params.n_ubatch = self.context_length
            if pooling is not None:
                params.pooling_type = getattr(x.llama_pooling_type, f"LLAMA_POOLING_TYPE_{pooling.upper()}")
        else:
            params.n_batch = params.n_ubatch = min(settings.prompt_chunk_tokens, self.context_length)
            params.cache_ram_mib = settings.prompt_cache_mib
        params.lora_adapters = [x.CommonAdapterLoraInfo(str(adapter), scale) for adapter, scale in lora_adapters(spec)]
        params.hostnames = [str(self.socket)]
        params.api_keys = [self.key]
        params.ui = False
        params.endpoint_slots = False
        params.endpoint_metrics = True  # see the metrics call below
        params.verbosity = -1
        try:
            self.server = x.Server(params)
        except RuntimeError as exc:
            self._remove_folder()
            raise ModelFileError(path, f"could not be loaded by llama.cpp ({exc})",
                                 "check that it is a complete GGUF file of a model llama.cpp supports") from exc
        # The binding returns before its server loop has started, and a loop that starts after a stop request
        # never ends (closing such a model hung). A metrics request is answered by the loop itself: once it
        # returns, the loop runs and close() can stop it.
        self.server.handle_metrics()

    @staticmethod
    def threads_for(settings: Settings) -> int:
        return settings.generation_threads or settings.threads

    @property
    def listening_address(self) -> str:
        return str(self.server.listening_address)

    def local(self, route: str, body: dict[str, Any]) -> Any:
        """POST to one of llama.cpp's own routes (tokenize, detokenize…) through the private socket."""
        import httpx

        transport = httpx.HTTPTransport(uds=str(self.socket))
        with httpx.Client(transport=transport, base_url="http://llama", timeout=60) as client:
            response = client.post(route, json=body, headers={"Authorization": f"Bearer {self.key}"})
        if response.status_code != 200:
            raise BackendError(f"{self.spec.name}: llama.cpp {route} answered {response.status_code}")
        return response.json()

    def stream(self, handler: str, body: dict[str, Any],
               cancel: threading.Event) -> Generator[dict[str, Any], None, None]:
        """The chunks of one streamed request, as llama.cpp produces them.

        llama.cpp calls back from inside ``handle_*`` for every chunk; that call blocks until the request
        ends, so it runs in a thread of its own and hands chunks over through a queue. Returning True
        from the callback ends the request: llama.cpp frees its slot at the next step. A cancelled stream
        waits for that, so whoever is next never finds the slot still busy.
        """
        chunks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        stop = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            chunks.put(chunk)
            return stop.is_set() or cancel.is_set()

        def call() -> None:
            try:
                getattr(self.server, handler)(body, on_chunk)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                chunks.put(exc)
            finally:
                chunks.put(_DONE)

        thread = threading.Thread(target=call, name="plait-llama-request", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    item = chunks.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    if cancel.is_set():
                        return
                    continue
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise BackendError(f"{self.spec.name}: {item}") from item
                yield item
        finally:
            stop.set()
            thread.join()

    def close(self) -> None:
        server = self.__dict__.pop("server", None)
        del server  # the binding's destructor stops the server loop and frees the model
        self._remove_folder()


def _error_of(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """llama.cpp's error object, if this chunk is one (``{"error": {...}}``, or the binding's own)."""
    if "error" in chunk and isinstance(chunk["error"], dict):
        return chunk["error"]
    if "code" in chunk and "message" in chunk and "choices" not in chunk:
        return chunk
    return None


def _raise_for(name: str, context_length: int, error: dict[str, Any]) -> None:
    message = str(error.get("message", "unknown error"))
    if error.get("type") == "exceed_context_size_error":
        raise ContextTooLong(f"the input is longer than {name}'s context window of {context_length} tokens; "
                         "shorten it, or raise the context_length setting")
    if int(error.get("code", 500)) < 500:
        raise InputError(f"model '{name}' cannot run this request: {message}")
    raise BackendError(f"{name}: {message}")


class LlamaCppGenerator(TextGenerator):
    def __init__(self, spec: ModelSpec, server: LlamaServer) -> None:
        self.spec, self.server = spec, server
        self.context_length: int = server.context_length
        self.parallel, self.threads = server.slots, server.threads

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        opts = self.resolved(request.options)
        body: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True},
                                "max_tokens": opts.max_tokens, "temperature": opts.temperature}
        if opts.stop:
            body["stop"] = list(opts.stop)
        if opts.top_p is not None:
            body["top_p"] = opts.top_p
        if opts.seed is not None:
            body["seed"] = opts.seed
        if opts.logit_bias:
            body["logit_bias"] = {str(token): bias for token, bias in opts.logit_bias.items()}
        # "Any JSON object" is the schema {"type": "object"}; llama.cpp turns a schema into a grammar.
        schema = opts.json_schema if opts.json_schema is not None else ({"type": "object"} if opts.json_object
                                                                         else None)
        if request.messages is not None:
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
            if schema is not None:
                body["response_format"] = {"type": "json_object", "schema": schema}
            chunks = self.server.stream("handle_chat_completions", body, request.cancel)
            yield from self._relay(chunks, request, lambda c: (c.get("delta") or {}).get("content") or "")
        else:
            assert request.prompt is not None
            body["prompt"] = request.prompt
            if schema is not None:
                body["json_schema"] = schema
            chunks = self.server.stream("handle_completions", body, request.cancel)
            yield from self._relay(chunks, request, lambda c: c.get("text") or "")

    def _relay(self, chunks: Generator[dict[str, Any], None, None], request: GenerationRequest,
               text_of: Callable[[dict[str, Any]], str]) -> Iterator[Delta]:
        generated = 0
        finish = "stop"
        usage: Usage | None = None
        try:
            for chunk in chunks:
                error = _error_of(chunk)
                if error is not None:
                    _raise_for(self.spec.name, self.context_length, error)
                if chunk.get("usage"):
                    counts = chunk["usage"]
                    usage = Usage(int(counts.get("prompt_tokens", 0)), int(counts.get("completion_tokens", 0)),
                                  int((counts.get("prompt_tokens_details") or {}).get("cached_tokens", 0)))
                for choice in chunk.get("choices") or ():
                    text = text_of(choice)
                    if text:
                        generated += 1
                        yield Delta(text)
                    if choice.get("finish_reason"):
                        finish = choice["finish_reason"]
                if request.cancel.is_set():
                    break
        finally:
            chunks.close()  # stops the request if we left early
        if request.cancel.is_set():
            finish = "cancelled"
        yield Delta("", finish_reason=finish if finish in ("stop", "length", "cancelled") else "stop",  # type: ignore[arg-type]
                    usage=usage or Usage(0, generated))

    def count_tokens(self, text: str) -> int:
        return len(self.server.local("/tokenize", {"content": text, "add_special": False})["tokens"])

    def close(self) -> None:
        self.server.close()


class LlamaCppEmbedder(Embedder):
    """Embeddings from a GGUF model, pooled as its file says (``pooling`` option: mean, cls or last to choose).

    A chat model's GGUF declares no pooling; it is mean-pooled. llama.cpp batches the texts of one call.
    """

    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        self.spec = spec
        pooling = spec.options.get("pooling")
        self.server = LlamaServer(spec, settings, embedding=True, pooling=str(pooling) if pooling else None)
        try:
            try:
                probe = self._call(["dimensions"])
            except InputError as exc:
                if pooling or "Pooling type 'none'" not in str(exc):
                    raise
                self.server.close()
                self.server = LlamaServer(spec, settings, embedding=True, pooling="mean")
                probe = self._call(["dimensions"])
        except BaseException:
            self.server.close()
            raise
        self.dimensions = int(probe.shape[1])

    def _call(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        result = self.server.server.handle_embeddings({"input": list(texts)})
        error = _error_of(result)
        if error is not None:
            _raise_for(self.spec.name, self.server.context_length, error)
        rows = sorted(result["data"], key=lambda row: row["index"])
        return np.asarray([row["embedding"] for row in rows], dtype=np.float32)

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        return self._call(texts)

    def close(self) -> None:
        self.server.close()


def load(spec: ModelSpec, settings: Settings) -> TextGenerator | Embedder:
    if "embed" in spec.capabilities and "chat" not in spec.capabilities:
        return LlamaCppEmbedder(spec, settings)
    return LlamaCppGenerator(spec, LlamaServer(spec, settings))
