"""hear: speech to text from audio files (WAV at any rate and channel count), with word timings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from plait.errors import InputError
from plait.models.speech import SpeechRecognizer, Word
from plait.readers.audio import Audio, read_audio
from plait.runtime import Runtime, get_runtime
from plait.tasks.registry import Batch, Task, TaskRequest, decode_base64, file_content, one_file, run_decoded

DEFAULT_MODEL = "pocketsphinx-en"


@dataclass(frozen=True)
class HearResult:
    source: str
    text: str = ""
    words: tuple[Word, ...] = ()
    duration: float = 0.0  # seconds of audio
    error: str | None = None  # set instead of a transcript when this input could not be read
    model: str = ""


def recognizer(model: str | SpeechRecognizer | None = None, runtime: Runtime | None = None) -> SpeechRecognizer:
    if isinstance(model, SpeechRecognizer):
        return model
    rt = runtime or get_runtime()
    return rt.model(model or DEFAULT_MODEL, SpeechRecognizer)


def hear(audio: str | Path | bytes | Audio, *, model: str | SpeechRecognizer | None = None,
         runtime: Runtime | None = None) -> HearResult:
    """Transcribe one recording: a path, the bytes of a WAV file, or decoded :class:`Audio`."""
    return hear_many([audio], model=model, runtime=runtime)[0]


def hear_many(audios: Sequence[str | Path | bytes | Audio], *, model: str | SpeechRecognizer | None = None,
              runtime: Runtime | None = None, errors: Literal["raise", "report"] = "raise",
              progress: Callable[[int], None] | None = None) -> list[HearResult]:
    """Transcribe recordings in order. ``errors="report"`` keeps going past unreadable files (see ``see_many``)."""
    if not audios:
        raise InputError("no audio given")
    m = recognizer(model, runtime)
    results = []
    for item in audios:
        try:
            audio = item if isinstance(item, Audio) else read_audio(item)
        except InputError as exc:
            if errors == "raise":
                raise
            results.append(HearResult(_name(item), error=str(exc)))
        else:
            transcript = m.transcribe(audio)
            results.append(HearResult(_name(item), transcript.text, transcript.words, transcript.duration,
                                      model=m.spec.name))
        if progress:
            progress(1)
    return results


def _name(item: object) -> str:
    if isinstance(item, str | Path):
        return str(item)
    if isinstance(item, bytes):
        return f"<{len(item)} bytes>"
    if isinstance(item, Audio):
        return item.source or "<audio>"
    return f"<{type(item).__name__}>"


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Word error rate over a set of utterances: word-level edit distance / reference words.

    Case and punctuation are ignored (a recogniser outputs neither), so "Hello, world." and "hello world"
    match. The same figure as ``jiwer.wer`` with lower-casing and punctuation removal (checked in the tests).
    """
    if len(references) != len(hypotheses):
        raise InputError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [_words(r) for r in references]
    hyps = [_words(h) for h in hypotheses]
    total = sum(len(r) for r in refs)
    if total == 0:
        raise InputError("the references have no words")
    return sum(_edit_distance(r, h) for r, h in zip(refs, hyps, strict=True)) / total


def _words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z0-9']+", text.lower().replace("’", "'"))


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


# --- the task -----------------------------------------------------------------------------------------

class HearRequest(TaskRequest):
    audio: str = file_content("a WAV recording")
    model: str | None = Field(None, description=f"a speech recogniser (default: {DEFAULT_MODEL})")


def _runner(request: HearRequest, runtime: Runtime) -> Callable[[list[str]], list[HearResult]]:
    def run(recordings: list[str]) -> list[HearResult]:
        # As see's: decoded per item (one bad request fails alone), the model looked up in the worker.
        return run_decoded(recordings, "audio", lambda error: HearResult("<audio>", error=error),
                           lambda good: hear_many(good, model=request.model, runtime=runtime, errors="report"))
    return run


TASK = Task(
    name="hear", summary="Speech to text, with word timings", request=HearRequest, result=HearResult,
    input="audio", file_input=True,
    run=lambda request, ctx: hear(decode_base64(request.audio, "audio"), model=request.model, runtime=ctx.runtime),
    batch=Batch(items=lambda request: [request.audio], key=lambda request: str(request.model), runner=_runner,
                answer=one_file),
    models=lambda request, settings: [request.model or DEFAULT_MODEL],
)
