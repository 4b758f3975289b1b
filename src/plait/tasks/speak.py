"""speak: text to speech with eSpeak NG (a Debian package), as WAV audio.

eSpeak NG is a formant synthesiser: robotic but clear, fast, tiny, in ~100 languages, and entirely local.
The text goes to it on standard input (never on the command line, where a leading ``-`` would be read as
an option) and the audio comes back as a WAV file.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field

from plait.errors import BackendError, InputError, MissingDependency
from plait.readers.audio import Audio, read_audio
from plait.tasks.registry import Task, TaskRequest, encode_base64

DEFAULT_VOICE = "en-us"
MAX_CHARS = 50_000  # ~50 minutes of speech; longer texts should be spoken in parts
MIN_RATE, MAX_RATE = 80, 450  # words per minute eSpeak NG accepts


@dataclass(frozen=True)
class Speech:
    audio: Audio
    voice: str
    text: str

    @property
    def duration(self) -> float:
        return self.audio.duration

    def wav_bytes(self) -> bytes:
        return self.audio.wav_bytes()

    def save(self, path: str | Path) -> Path:
        out = Path(path)
        try:
            out.write_bytes(self.wav_bytes())
        except OSError as exc:
            raise InputError(f"cannot write {out} ({exc.strerror or exc})") from exc
        return out


@dataclass(frozen=True)
class Voice:
    name: str  # what --voice takes, e.g. "en-us"
    language: str
    gender: str
    description: str


def espeak_binary() -> str:
    found = shutil.which("espeak-ng")
    if found is None:
        raise MissingDependency("speak (text to speech)", system="espeak-ng")
    return found


def speak(text: str, *, voice: str | None = None, rate: int | None = None, pitch: int | None = None) -> Speech:
    """Synthesise ``text``; ``rate`` in words per minute (default 175), ``pitch`` 0-99 (default 50)."""
    if not isinstance(text, str):
        raise InputError(f"text to speak must be a string, not {type(text).__name__}")
    if not text.strip():
        raise InputError("nothing to speak: the text is empty")
    if len(text) > MAX_CHARS:
        raise InputError(f"the text has {len(text):,} characters; plait speaks up to {MAX_CHARS:,} at a time, "
                         "so split it into parts")
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise InputError(f"rate must be {MIN_RATE}-{MAX_RATE} words per minute, not {rate}")
    if pitch is not None and not 0 <= pitch <= 99:
        raise InputError(f"pitch must be 0-99, not {pitch}")
    voice = voice or DEFAULT_VOICE
    if voice.startswith("-") or any(c.isspace() for c in voice):
        raise InputError(f"'{voice}' is not a voice name; see `plait speak --list-voices`")
    binary = espeak_binary()
    with tempfile.TemporaryDirectory(prefix="plait-speak-") as tmp:
        out = Path(tmp) / "speech.wav"
        cmd = [binary, "-v", voice, "-b", "1", "-w", str(out), "--stdin"]  # -b 1: the input is UTF-8
        if rate is not None:
            cmd[1:1] = ["-s", str(rate)]
        if pitch is not None:
            cmd[1:1] = ["-p", str(pitch)]
        try:
            # eSpeak NG runs ~50x faster than real time; the timeout only catches a hung process.
            proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True,
                                  timeout=60 + len(text) / 50)
        except subprocess.TimeoutExpired as exc:
            raise BackendError("espeak-ng did not finish in time") from exc
        message = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode != 0 or not out.exists():
            if "voice" in message.lower():
                raise InputError(f"espeak-ng has no voice '{voice}'; see `plait speak --list-voices`")
            raise BackendError(f"espeak-ng failed (exit {proc.returncode}): {message or 'no output'}")
        audio = read_audio(out.read_bytes(), name="espeak-ng output")
    return Speech(audio, voice, text)


@cache
def voices() -> tuple[Voice, ...]:
    """The voices eSpeak NG offers here (one per language and dialect, plus MBROLA voices if installed)."""
    proc = subprocess.run([espeak_binary(), "--voices"], capture_output=True, timeout=30)
    found = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            _, language, age_gender, name = parts[:4]
            gender = {"M": "male", "F": "female"}.get(age_gender.rpartition("/")[2], "")
            found.append(Voice(language, language, gender, name.replace("_", " ")))
    return tuple(found)


# --- the task -----------------------------------------------------------------------------------------

class SpeakRequest(TaskRequest):
    text: str = Field(min_length=1, max_length=MAX_CHARS)
    voice: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_+-]+$", description="e.g. en-us")
    rate: int | None = Field(None, ge=MIN_RATE, le=MAX_RATE, description="words per minute")
    pitch: int | None = Field(None, ge=0, le=99)


def _json(speech: Speech) -> dict[str, Any]:
    return {"voice": speech.voice, "duration": round(speech.duration, 3), "sample_rate": speech.audio.sample_rate,
            "wav": encode_base64(speech.wav_bytes())}


TASK = Task(
    name="speak", summary="Text to speech: a WAV file", request=SpeakRequest, result=Speech,
    run=lambda request, ctx: speak(request.text, voice=request.voice, rate=request.rate, pitch=request.pitch),
    media_type="audio/wav", render=lambda speech: speech.wav_bytes(), serialize=_json, response=dict[str, Any],
)
