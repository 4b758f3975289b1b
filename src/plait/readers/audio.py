"""Audio: read WAV files (any sample rate, channels and PCM/float sample format) into mono float samples.

WAV is read with SciPy; other formats (FLAC, OGG…) when the optional ``soundfile`` package is installed.
Resampling uses a polyphase filter, which is exact for the usual rate ratios (e.g. 22,050 → 16,000 Hz).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from math import gcd
from pathlib import Path
from typing import TYPE_CHECKING

from plait.errors import InputError, MissingDependency
from plait.readers.text import read_bytes

if TYPE_CHECKING:
    import numpy as np

AUDIO_SUFFIXES = (".wav", ".wave", ".flac", ".ogg", ".oga")
MAX_AUDIO_BYTES = 500 * 1024 * 1024


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32, mono, in [-1, 1]
    sample_rate: int
    source: str = ""

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def resampled(self, rate: int) -> Audio:
        return self if rate == self.sample_rate else Audio(resample(self.samples, self.sample_rate, rate), rate,
                                                           self.source)

    def pcm16(self) -> np.ndarray:
        """16-bit integer samples, what most speech engines and WAV files take."""
        import numpy as np

        return np.clip(np.round(self.samples * 32767.0), -32768, 32767).astype(np.int16)

    def wav_bytes(self) -> bytes:
        from scipy.io import wavfile

        buf = io.BytesIO()
        wavfile.write(buf, self.sample_rate, self.pcm16())
        return buf.getvalue()


def read_audio(source: str | Path | bytes, *, name: str | None = None) -> Audio:
    """Decode an audio file or encoded bytes; raises :class:`InputError` for anything that is not audio."""
    label = name or (f"{len(source)} bytes of audio" if isinstance(source, bytes) else str(source))
    if isinstance(source, bytes):
        data = source
    else:
        data = read_bytes(source, limit=MAX_AUDIO_BYTES, what="audio files", give="audio files")
    if not data:
        raise InputError(f"{label} is empty, not audio")
    if data[:4] in (b"RIFF", b"RIFX", b"RF64"):
        rate, samples = _read_wav(data, label)
    else:
        rate, samples = _read_other(data, label)
    if samples.size == 0:
        raise InputError(f"{label} holds no audio samples")
    return Audio(samples, rate, label)


def _read_wav(data: bytes, label: str) -> tuple[int, np.ndarray]:
    import numpy as np
    from scipy.io import wavfile

    try:
        with warnings.catch_warnings():
            # Streamed WAVs (e.g. from a pipe) carry a placeholder length; SciPy warns and reads what is there.
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            rate, raw = wavfile.read(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - SciPy fails on malformed files in many ways, even UnboundLocalError
        # SciPy's own words stay out of the message (an HTTP answer must not show a library's internals).
        raise InputError(f"{label} is not a readable WAV file (its header or data is damaged); convert it to "
                         "16-bit PCM WAV") from exc
    if raw.dtype == np.uint8:  # 8-bit WAV is unsigned, centred on 128
        samples = (raw.astype(np.float32) - 128.0) / 128.0
    elif raw.dtype.kind == "i":
        samples = raw.astype(np.float32) / float(-np.iinfo(raw.dtype).min)
    elif raw.dtype.kind == "f":
        samples = raw.astype(np.float32)
    else:
        raise InputError(f"{label} has {raw.dtype} samples, which plait cannot read; convert it to 16-bit PCM")
    return int(rate), _mono(samples)


def _read_other(data: bytes, label: str) -> tuple[int, np.ndarray]:
    try:
        import soundfile
    except ImportError as exc:
        if data[:4] in (b"fLaC", b"OggS"):
            raise MissingDependency("reading FLAC/OGG audio", package="soundfile") from exc
        raise InputError(f"{label} is not a WAV file; give WAV audio (or install soundfile for FLAC/OGG)") from exc
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=False)
    except (RuntimeError, ValueError) as exc:  # libsndfile's errors are RuntimeErrors
        raise InputError(f"{label} is not audio that libsndfile can read ({exc})") from exc
    return int(rate), _mono(samples)


def _mono(samples: np.ndarray) -> np.ndarray:
    import numpy as np

    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if not np.isfinite(samples).all():
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    import numpy as np
    from scipy.signal import resample_poly

    if from_rate <= 0 or to_rate <= 0:
        raise InputError(f"cannot resample audio from {from_rate} Hz to {to_rate} Hz")
    g = gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // g, from_rate // g).astype(np.float32)
