"""PyTorch models: sentence-transformers embedders and transformers causal LMs.

Both load a local folder or a hub name. Hub names resolve through the local hub cache; where the machine
can reach the hub, the libraries download as usual. When nothing is there, the error says how to get it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from plait.errors import BackendError, MissingDependency, ModelFileError
from plait.models.base import (
    Delta,
    Embedder,
    EmbedKind,
    FinishReason,
    GenerationRequest,
    TextGenerator,
    Usage,
)
from plait.models.spec import ModelSpec
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np


def _location(spec: ModelSpec) -> str:
    return spec.hub_name if spec.is_hub else str(spec.local_path())


def _hub_error(spec: ModelSpec, exc: Exception) -> ModelFileError:
    return ModelFileError(
        spec.hub_name, f"could not be loaded ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
        "download it where the hub is reachable (`huggingface-cli download "
        f"{spec.hub_name}`), then add the folder with `plait models add NAME PATH`",
    )


def _load_error(spec: ModelSpec, exc: OSError) -> ModelFileError:
    """A hub model not in the cache says how to download it; a local folder that fails, to check it."""
    if spec.is_hub:
        return _hub_error(spec, exc)
    return ModelFileError(spec.source, f"could not be loaded ({exc})", "check the model folder")


def quiet_transformers() -> None:
    """Loading bars and notices from transformers would mix into plait's own output."""
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


def _prepare(settings: Settings) -> None:
    import torch

    torch.set_num_threads(settings.threads)
    quiet_transformers()


class SentenceTransformerEmbedder(Embedder):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingDependency("PyTorch embedding models", extra="hf", package="sentence-transformers") from exc
        _prepare(settings)
        try:
            self.st = SentenceTransformer(_location(spec), device="cpu")
        except OSError as exc:
            raise _load_error(spec, exc) from exc
        self.spec = spec
        dim = getattr(self.st, "get_embedding_dimension", None) or self.st.get_sentence_embedding_dimension
        self.dimensions = int(dim() or 0)
        self.batch_size = settings.embed_batch_size
        self.prefixes = spec.options.get("prefixes", {})  # e.g. {"query": "query: "} for E5-style models

    def embed_batch(self, texts: Sequence[str], kind: EmbedKind = "document") -> np.ndarray:
        prefix = self.prefixes.get(kind, "")
        return self.st.encode([prefix + t for t in texts], batch_size=len(texts), convert_to_numpy=True,
                              normalize_embeddings=False, show_progress_bar=False)


class TransformersGenerator(TextGenerator):
    """A causal LM through transformers, streamed with a background ``generate`` thread."""

    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise MissingDependency("transformers chat models", extra="hf", package="transformers") from exc
        _prepare(settings)
        where = _location(spec)
        kwargs: dict[str, Any] = {}
        if spec.options.get("gguf_file"):
            kwargs["gguf_file"] = spec.options["gguf_file"]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
            self.model: Any = AutoModelForCausalLM.from_pretrained(where, **kwargs)
        except OSError as exc:
            raise _load_error(spec, exc) from exc
        self.model.eval()
        self.spec = spec
        self._lock = threading.Lock()

    def stream(self, request: GenerationRequest) -> Iterator[Delta]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        opts = self.resolved(request.options)
        if opts.json_schema is not None or opts.json_object:
            raise BackendError(f"{self.spec.name}: JSON-constrained output needs a llama.cpp (GGUF) model")
        if opts.logit_bias:
            raise BackendError(f"{self.spec.name}: logit_bias needs a llama.cpp (GGUF) or remote model")
        if request.messages is not None:
            if not getattr(self.tokenizer, "chat_template", None):
                raise BackendError(f"{self.spec.name} has no chat template; use completion (generate) instead")
            prompt = self.tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in request.messages],
                tokenize=False, add_generation_prompt=True)
        else:
            prompt = request.prompt or ""
        inputs = self.tokenizer(prompt, return_tensors="pt")
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> bool:
                return request.cancel.is_set()

        sample = (opts.temperature or 0) > 0
        gen_kwargs: dict[str, Any] = dict(
            **inputs, streamer=streamer, max_new_tokens=opts.max_tokens, do_sample=sample,
            stopping_criteria=StoppingCriteriaList([Cancelled()]),
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if sample:
            gen_kwargs.update(temperature=opts.temperature, top_p=opts.top_p or 1.0)
        if opts.seed is not None:
            torch.manual_seed(opts.seed)
        with self._lock:
            result: dict[str, Any] = {}

            def work() -> None:
                with torch.inference_mode():
                    result["ids"] = self.model.generate(**gen_kwargs)

            thread = threading.Thread(target=work, daemon=True)
            thread.start()
            text = ""
            for piece in streamer:
                cut = _first_stop(text + piece, opts.stop)
                if cut is not None:
                    request.cancel.set()
                    yield Delta((text + piece)[len(text):cut])
                    break
                text += piece
                if piece:
                    yield Delta(piece)
            thread.join()
        n_prompt = int(inputs["input_ids"].shape[1])
        n_out = int(result["ids"].shape[1]) - n_prompt if "ids" in result else 0
        finish: FinishReason = "length" if n_out >= (opts.max_tokens or 0) else "stop"
        yield Delta("", finish_reason=finish, usage=Usage(n_prompt, n_out))


def _first_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def load(spec: ModelSpec, settings: Settings) -> Embedder | TextGenerator:
    if spec.backend == "sentence-transformers":
        return SentenceTransformerEmbedder(spec, settings)
    return TransformersGenerator(spec, settings)
