"""The speech-recognition interface: backends implement ``transcribe_pcm``; the base class converts audio.

Audio arrives as :class:`plait.readers.audio.Audio` (any rate, mono float); the base class resamples it to
the rate the engine was trained on and hands over 16-bit samples.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plait.models.base import Model

if TYPE_CHECKING:
    import numpy as np

    from plait.readers.audio import Audio


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds from the start of the audio
    end: float
    confidence: float  # the engine's posterior probability of this word, 0..1


@dataclass(frozen=True)
class Transcript:
    text: str
    words: tuple[Word, ...]
    duration: float  # seconds of audio heard


class SpeechRecognizer(Model):
    ability = "transcribe speech"  # for "model X cannot …" errors

    sample_rate: int = 16000

    @abstractmethod
    def transcribe_pcm(self, pcm: np.ndarray) -> Transcript:
        """Transcribe mono 16-bit samples at ``self.sample_rate``."""

    def transcribe(self, audio: Audio) -> Transcript:
        return self.transcribe_pcm(audio.resampled(self.sample_rate).pcm16())
