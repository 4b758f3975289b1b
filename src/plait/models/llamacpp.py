"""GGUF models through llama-cpp-python: chat (with the model's own chat template), completion and
embeddings.

A ``Llama`` object is not thread-safe, so each model serialises its calls with a lock; the server's
queue decides who goes next.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from plait.errors import BackendError, InputError, MissingDependency, ModelFileError
from plait.models.base import Delta, Embedder, EmbedKind, GenerationRequest, TextGenerator, Usage
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np


# llama.cpp's own JSON grammar keeps control characters out of strings; llama-cpp-python's copy of the
# schema converter lost that ("[^\"\\]"), so a model could emit a raw newline inside a string and the
# "constrained" JSON would not parse. Restore the upstream rule.
_JSON_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'


def wait_passively() -> None:
    """Make OpenMP's threads sleep, not spin, between parallel regions (a user's own setting wins).

    llama.cpp's OpenMP threads spin while waiting by default, which starves every other thread (and
    process) on a small machine: prompt evaluation was measured 5-50x slower beside other work, and in the
    server, beside its event loop. OpenMP reads this once, when the first library using it loads (PyTorch
    may be that library, before llama.cpp), so entry points call this first thing.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _llama_cpp() -> Any:
    wait_passively()
    try:
        import llama_cpp
    except ImportError as exc:
        raise MissingDependency("GGUF models (llama.cpp)", extra="llm", package="llama-cpp-python") from exc
    rules = getattr(llama_cpp.llama_grammar, "PRIMITIVE_RULES", {})
    if "char" in rules and rules["char"].content != _JSON_CHAR:
        rules["char"] = type(rules["char"])(_JSON_CHAR, list(rules["char"].deps))
    return llama_cpp


def _open(spec: ModelSpec, settings: Settings, **kwargs: Any) -> Any:
    llama_cpp = _llama_cpp()
    path = spec.local_path()
    try:
        return llama_cpp.Llama(
            model_path=str(path),
            n_ctx=int(spec.options.get("n_ctx", settings.context_length)),
            n_threads=settings.generation_threads or settings.threads,
            verbose=False,
            **kwargs,
        )
    except (ValueError, RuntimeError) as exc:
        raise ModelFileError(path, f"could not be loaded by llama.cpp ({exc})",
                             "check that it is a complete GGUF file of a model llama.cpp supports") from exc


class LlamaCppGenerator(TextGenerator):
    def __init__(self, spec: ModelSpec, llm: Any) -> None:
        self.spec, self.llm = spec, llm
        self.context_length = int(llm.n_ctx())
        self._lock = threading.Lock()

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        opts = self.resolved(request.options)
        kwargs: dict[str, Any] = {
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature,
            "stop": list(opts.stop) or None,
            "stream": True,
        }
        if opts.top_p is not None:
            kwargs["top_p"] = opts.top_p
        if opts.seed is not None:
            kwargs["seed"] = opts.seed
        with self._lock:
            if request.messages is not None:
                if opts.json_schema is not None or opts.json_object:
                    kwargs["response_format"] = {"type": "json_object", "schema": opts.json_schema} \
                        if opts.json_schema is not None else {"type": "json_object"}
                messages = [{"role": m.role, "content": m.content} for m in request.messages]
                chunks = self.llm.create_chat_completion(messages=messages, **kwargs)
                yield from self._relay(chunks, request, lambda c: c["delta"].get("content") or "")
            else:
                assert request.prompt is not None
                grammar = self._grammar(opts.json_schema, opts.json_object)
                if grammar is not None:
                    kwargs["grammar"] = grammar
                chunks = self.llm.create_completion(prompt=request.prompt, **kwargs)
                yield from self._relay(chunks, request, lambda c: c.get("text") or "")

    def _relay(self, chunks: Iterator[dict[str, Any]], request: GenerationRequest,
               text_of: Any) -> Iterator[Delta]:
        generated = 0
        finish = "stop"
        try:
            for chunk in chunks:
                if request.cancel.is_set():
                    finish = "cancelled"
                    break
                choice = chunk["choices"][0]
                text = text_of(choice)
                if text:
                    generated += 1
                    yield Delta(text)
                if choice.get("finish_reason"):
                    finish = choice["finish_reason"]
        except ValueError as exc:
            if "context window" in str(exc):  # llama.cpp's message for a prompt longer than n_ctx
                raise InputError(
                    f"the input is longer than {self.spec.name}'s context window of {self.context_length} "
                    "tokens; shorten it, or raise the context_length setting") from exc
            raise BackendError(f"{self.spec.name}: {exc}") from exc
        except RuntimeError as exc:
            raise BackendError(f"{self.spec.name}: {exc}") from exc
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()  # stops llama.cpp from evaluating further tokens
        # n_tokens counts every token in the context after the run: the prompt plus what was sampled.
        completion_tokens = generated
        prompt_tokens = max(0, int(self.llm.n_tokens) - completion_tokens)
        yield Delta("", finish_reason=finish if finish in ("stop", "length", "cancelled") else "stop",  # type: ignore[arg-type]
                    usage=Usage(prompt_tokens, completion_tokens))

    def _grammar(self, schema: dict[str, Any] | None, json_object: bool) -> Any:
        if schema is None and not json_object:
            return None
        llama_cpp = _llama_cpp()
        if schema is not None:
            return llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        return llama_cpp.LlamaGrammar.from_string(llama_cpp.llama_grammar.JSON_GBNF, verbose=False)

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False))

    def close(self) -> None:
        close = getattr(self.llm, "close", None)
        if close:
            close()


class LlamaCppEmbedder(Embedder):
    def __init__(self, spec: ModelSpec, llm: Any) -> None:
        self.spec, self.llm = spec, llm
        self.dimensions = int(llm.n_embd())
        self._lock = threading.Lock()

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        import numpy as np

        with self._lock:
            vectors = self.llm.embed(list(texts))
        return np.asarray(vectors, dtype=np.float32)

    def close(self) -> None:
        close = getattr(self.llm, "close", None)
        if close:
            close()


def load(spec: ModelSpec, settings: Settings) -> TextGenerator | Embedder:
    if "embed" in spec.capabilities and "chat" not in spec.capabilities:
        return LlamaCppEmbedder(spec, _open(spec, settings, embedding=True))
    return LlamaCppGenerator(spec, _open(spec, settings))
