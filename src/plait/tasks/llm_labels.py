"""Zero-shot classification by a language model, constrained to the labels.

With a llama.cpp model, when llama-cpp-python (an optional extra) is installed, the choice is scored
exactly: the prompt (the text, the labels, "answer with the label only") is evaluated once, then each
label's tokens are scored as the answer; the sum of their log-probabilities is the label's score. This
is constrained decoding carried to its end: the model can only answer with one of the labels, and
instead of one sampled answer we get the model's probability of each, renormalised over the label set
(a softmax of the scores, temperature 1 until calibrated).
Multi-label: one yes/no question per label, scored ``log P(yes) - log P(no)``, whose sigmoid is the
model's own odds of "yes" against "no".

Small models prefer some answers whatever the text (the first label listed, a frequent word). Contextual
calibration (Zhao et al., 2021, "Calibrate Before Use") removes that: the same prompt is scored once
with a content-free text ("N/A") and those scores are subtracted from every text's scores, so a label
wins by what the text adds, not by the model's prior for it.

Other generators (transformers, an OpenAI-compatible server, a GGUF model without llama-cpp-python) do
not expose token log-probabilities here, so they answer under a JSON-schema grammar whose only values
are the labels; the chosen label gets probability ~1. That is a choice, not a calibrated distribution,
and is reported as such.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from plait.errors import BackendError
from plait.models.base import GenerationOptions, Message, TextGenerator
from plait.tasks.calibration import PlattScaling, TemperatureScaling
from plait.tasks.classifiers import Progress, ScoreClassifier

if TYPE_CHECKING:
    import numpy as np

CONTENT_FREE = "N/A"
MAX_TEXT_TOKENS = 384  # the start of a long text says what it is about; keeps 135M-parameter models quick
CHOICE_SCORE = 20.0  # score gap given to a grammar-constrained choice (probability ~1 - 2e-9)
_OPENING = threading.Lock()  # held while a generator's scorer is looked up or opened


def _single_prompt(text: str, labels: Sequence[str], descriptions: Sequence[str | None]) -> str:
    options = "\n".join(f"- {label}" + (f": {desc}" if desc else "") for label, desc in zip(labels, descriptions,
                                                                                             strict=True))
    return (f"{text}\n\nWhich one of these labels fits the text above best?\n{options}\n"
            "Answer with the label only.")


def _yes_no_prompt(text: str, label: str, description: str | None) -> str:
    about = f"{label} ({description})" if description else label
    return f"{text}\n\nIs the text above about {about}? Answer yes or no."


class LlmClassifier(ScoreClassifier):
    def __init__(self, generator: TextGenerator, labels: Sequence[str],
                 descriptions: Sequence[str | None] | None = None, *, multi_label: bool = False,
                 threshold: float | None = None, max_text_tokens: int = MAX_TEXT_TOKENS,
                 contextual_calibration: bool = True,
                 reacquire: Callable[[], TextGenerator] | None = None) -> None:
        self.generator = generator
        # Scoring many texts takes minutes; in between, the model pool may unload an idle or least
        # recently used model and free its llama.cpp context. ``reacquire`` (the pool's lookup) is called
        # before each text: it marks the model as in use and hands back a reloaded one if it was unloaded.
        self.reacquire = reacquire
        self.labels = tuple(labels)
        self.descriptions = tuple(descriptions) if descriptions is not None else (None,) * len(self.labels)
        self.multi_label, self.threshold = multi_label, threshold
        self.max_text_tokens = max_text_tokens
        self.calibrator = PlattScaling() if multi_label else TemperatureScaling(1.0)
        self._scorer = _LlamaScorer.of(generator)
        self.contextual_calibration = contextual_calibration and self._scorer is not None
        self._bias: np.ndarray | None = None

    @property
    def exact(self) -> bool:
        """Whether scores are the model's log-probabilities (llama.cpp) rather than a constrained choice."""
        return self._scorer is not None

    def scores(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        import numpy as np

        out = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        for i, text in enumerate(texts):
            self._refresh()
            if self.contextual_calibration and self._bias is None:
                self._bias = self._score_one(CONTENT_FREE)  # once per classifier: the model's prior per label
            out[i] = self._score_one(text) - (self._bias if self._bias is not None else 0.0)
            if progress:
                progress(1)
        return out

    def _refresh(self) -> None:
        if self.reacquire is None:
            return
        generator = self.reacquire()
        if generator is not self.generator:
            self.generator = generator
            self._scorer = _LlamaScorer.of(generator)

    def _score_one(self, text: str) -> np.ndarray:
        import numpy as np

        if self._scorer is not None:
            text = self._scorer.truncate(text, self.max_text_tokens)
            if self.multi_label:
                return np.array([self._scorer.yes_no(_yes_no_prompt(text, label, desc))
                                 for label, desc in zip(self.labels, self.descriptions, strict=True)])
            return self._scorer.choices(_single_prompt(text, self.labels, self.descriptions), self.labels)
        return self._choose(text[: self.max_text_tokens * 6])  # ~6 characters per token

    def _choose(self, text: str) -> np.ndarray:
        import numpy as np

        enum = {"type": "string", "enum": list(self.labels)}
        if self.multi_label:
            schema = {"type": "object", "properties": {"labels": {"type": "array", "items": enum}},
                      "required": ["labels"], "additionalProperties": False}
            options = "\n".join(f"- {label}" + (f": {d}" if d else "")
                                for label, d in zip(self.labels, self.descriptions, strict=True))
            prompt = f"{text}\n\nWhich of these labels fit the text above?\n{options}\nList every label that fits."
        else:
            schema = {"type": "object", "properties": {"label": enum}, "required": ["label"],
                      "additionalProperties": False}
            prompt = _single_prompt(text, self.labels, self.descriptions)
        answer = self.generator.chat([Message("user", prompt)],
                                     GenerationOptions(json_schema=schema, temperature=0.0, max_tokens=200))
        try:
            value = json.loads(answer.text)
            chosen = set(value["labels"]) if self.multi_label else {value["label"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"{self.generator.spec.name} did not answer with one of the labels "
                               f"(got {answer.text[:80]!r}); use a model that supports JSON-schema output, "
                               "or a llama.cpp model") from exc
        unknown = chosen - set(self.labels)
        if unknown:
            raise BackendError(f"{self.generator.spec.name} answered with unknown label(s) {sorted(unknown)}")
        gap = CHOICE_SCORE / 2
        return np.array([gap if label in chosen else -gap for label in self.labels])


class _LlamaScorer:
    """Log-probabilities of continuations under a llama.cpp model, reusing the evaluated prefix.

    Only the last position's logits are kept by llama.cpp unless the model was opened with
    ``logits_all`` (which costs memory for every position); scoring a continuation token by token from
    a cached prefix needs only the last position.
    """

    def __init__(self, llm: Any, lock: Any) -> None:
        self.llm = llm
        # This scorer's own Llama object (opened apart from the generator's server loop) is shared by every
        # classification with this generator; its evaluated prefix is state, so one scoring runs at a time.
        self.lock = lock or nullcontext()
        self.n_vocab = int(llm.n_vocab())
        self.template = self._template()

    @classmethod
    def of(cls, generator: TextGenerator) -> _LlamaScorer | None:
        """A scorer for a GGUF generator; None for other backends, which expose no token log-probabilities,
        and when llama-cpp-python (the optional ``llama-cpp-python`` extra: it compiles) is not installed.

        The generator serves through llama.cpp's server loop, which offers no logits; the scorer opens the
        same GGUF file through llama-cpp-python's C API, once per loaded generator (it lives and is freed
        with it).
        """
        if generator.spec.backend != "llamacpp":
            return None
        try:
            import llama_cpp
        except ImportError:
            return None
        # Two classifications starting at once would otherwise both open the GGUF file (twice the memory).
        with _OPENING:
            held: _LlamaScorer | None = generator.__dict__.get("_label_scorer")
            if held is None:
                llm = llama_cpp.Llama(model_path=str(generator.spec.local_path()),
                                      n_ctx=generator.context_length or 2048,
                                      n_threads=getattr(generator, "threads", None), verbose=False)
                held = generator.__dict__["_label_scorer"] = cls(llm, threading.Lock())
        return held

    def _template(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = (getattr(self.llm, "metadata", None) or {}).get("tokenizer.chat_template")
        if not template:
            return None  # a base model: plain-text prompts

        def token_text(token: int) -> str:
            return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

        return Jinja2ChatFormatter(template=template, eos_token=token_text(self.llm.token_eos()),
                                   bos_token=token_text(self.llm.token_bos()), add_generation_prompt=True)

    def prompt(self, user: str) -> str:
        if self.template is None:
            return f"{user}\nAnswer:"
        return str(self.template(messages=[{"role": "user", "content": user}]).prompt)

    def tokens(self, text: str, *, special: bool) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def truncate(self, text: str, max_tokens: int) -> str:
        tokens = self.tokens(text, special=False)
        if len(tokens) <= max_tokens:
            return text
        return str(self.llm.detokenize(tokens[:max_tokens]).decode("utf-8", errors="ignore"))

    def _logprobs_after(self, tokens: list[int]) -> np.ndarray:
        """log P(next token | tokens), evaluating only what the context does not already hold."""
        import llama_cpp
        import numpy as np

        llm = self.llm
        held = llm.input_ids[: llm.n_tokens]
        common = 0
        for a, b in zip(held, tokens, strict=False):
            if a != b:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # evaluate at least one token to get fresh logits
        llm.n_tokens = common  # eval() drops the cache from here on
        if len(tokens) > llm.n_ctx():
            raise BackendError(f"the classification prompt ({len(tokens)} tokens) does not fit the model's "
                               f"context ({llm.n_ctx()}); use fewer labels or shorter descriptions")
        # The last token always alone: llama.cpp's batched and single-token kernels round differently, so
        # scores would otherwise depend on how much of the prompt the cache happened to hold.
        if common < len(tokens) - 1:
            llm.eval(tokens[common:-1])
        llm.eval(tokens[-1:])
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(self.n_vocab,))
        z = logits.astype(np.float64)
        z -= z.max()
        return z - np.log(np.exp(z).sum())

    def continuation(self, prefix: list[int], answer: list[int]) -> float:
        total = 0.0
        for j, token in enumerate(answer):
            total += float(self._logprobs_after(prefix + answer[:j])[token])
        return total

    def choices(self, user: str, labels: Sequence[str]) -> np.ndarray:
        import numpy as np

        with self.lock:
            prefix = self.tokens(self.prompt(user), special=True)
            return np.array([self.continuation(prefix, self.tokens(label, special=False)) for label in labels])

    def yes_no(self, user: str) -> float:
        import numpy as np

        with self.lock:
            prefix = self.tokens(self.prompt(user), special=True)
            first = self._logprobs_after(prefix)
            # Either casing is the same answer; a model may also put a space first (plain prompts).
            yes = np.logaddexp.reduce([first[t] for t in self._first_tokens(("yes", "Yes", " yes", " Yes"))])
            no = np.logaddexp.reduce([first[t] for t in self._first_tokens(("no", "No", " no", " No"))])
            return float(yes - no)

    def _first_tokens(self, words: Sequence[str]) -> list[int]:
        return sorted({self.tokens(w, special=False)[0] for w in words})
