"""Speech to text with PocketSphinx (CMU Sphinx): small, CPU-only, faster than real time, rough.

The entry's source is a model folder holding the acoustic model (``options.hmm``), a language model
(``options.lm``) and a pronunciation dictionary (``options.dict``); the built-in one is the US English
model inside the ``pocketsphinx`` package.

Long recordings are cut into speech regions by PocketSphinx's voice-activity segmenter and each region
decoded on its own, which keeps the decoder's search small and gives each region its own timing.
"""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING, Any

from plait.errors import BackendError, MissingDependency, ModelFileError
from plait.models.spec import ModelSpec
from plait.models.speech import SpeechRecognizer, Transcript, Word
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np

EXTRA = "speech"
FRAMES_PER_SECOND = 100  # PocketSphinx's default frame rate (-frate)
WHOLE_UTTERANCE_SECONDS = 30.0  # longer audio is segmented first
# Gaussian noise (std in 16-bit units, about -61 dBFS) added before decoding. Stretches of exact digital
# silence (synthesised or edited audio) break the decoder's noise and cepstral-mean estimates; measured on
# espeak-ng speech it lowers the word error rate from ~0.8 to ~0.4, and it is far below the noise floor of
# any microphone recording.
DITHER = 30.0


class PocketSphinxRecognizer(SpeechRecognizer):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        try:
            import pocketsphinx
        except ImportError as exc:
            raise MissingDependency("speech recognition", extra=EXTRA, package="pocketsphinx") from exc
        self.spec = spec
        folder = spec.local_path(settings.models_dir)
        self.sample_rate = int(spec.options.get("sample_rate", 16000))
        files = {key: folder / str(spec.options[key]) for key in ("hmm", "lm", "dict") if key in spec.options}
        for key, path in files.items():
            if not path.exists():
                raise ModelFileError(path, f"(the {key} of {spec.name}) does not exist",
                                     "re-install pocketsphinx or fix the entry's options")
        try:
            self.decoder = pocketsphinx.Decoder(samprate=self.sample_rate, loglevel="FATAL",
                                                **{k: str(v) for k, v in files.items()})
        except (RuntimeError, ValueError) as exc:
            raise ModelFileError(folder, f"could not be loaded by PocketSphinx ({exc})",
                                 "check that it holds a PocketSphinx acoustic model, LM and dictionary") from exc
        self._pocketsphinx = pocketsphinx
        self._lock = threading.Lock()  # one decoder, one utterance at a time

    def transcribe_pcm(self, pcm: np.ndarray) -> Transcript:
        import numpy as np

        duration = len(pcm) / self.sample_rate
        noise = np.random.default_rng(0).normal(0.0, DITHER, len(pcm))
        pcm = np.clip(pcm.astype(np.float64) + noise, -32768, 32767).astype(np.int16)
        with self._lock:
            if duration <= WHOLE_UTTERANCE_SECONDS:
                words = self._decode(pcm.tobytes(), offset=0.0)
            else:
                words = []
                segmenter = self._pocketsphinx.Segmenter(sample_rate=self.sample_rate)
                for region in segmenter.segment(io.BytesIO(pcm.tobytes())):
                    words.extend(self._decode(region.pcm, offset=float(region.start_time)))
        return Transcript(" ".join(w.word for w in words), tuple(words), duration)

    def _decode(self, pcm: bytes, *, offset: float) -> list[Word]:
        d: Any = self.decoder
        try:
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
        except RuntimeError as exc:
            raise BackendError(f"PocketSphinx failed to decode the audio: {exc}") from exc
        if d.hyp() is None:
            return []
        words = []
        for seg in d.seg():
            word = _clean(seg.word)
            if word:
                words.append(Word(word, round(offset + seg.start_frame / FRAMES_PER_SECOND, 2),
                                  round(offset + (seg.end_frame + 1) / FRAMES_PER_SECOND, 2),
                                  round(float(seg.prob), 4)))
        return words


def _clean(token: str) -> str:
    """Drop silences and fillers (``<s>``, ``<sil>``, ``[NOISE]``); ``word(2)`` is a pronunciation variant."""
    if token.startswith(("<", "[", "+")):
        return ""
    return token.split("(", 1)[0]


def load(spec: ModelSpec, settings: Settings) -> PocketSphinxRecognizer:
    return PocketSphinxRecognizer(spec, settings)
