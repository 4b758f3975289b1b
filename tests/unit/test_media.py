"""see, hear and speak with fake models (fast): decoding images and audio, batches, bad input, the CLI."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from plait.errors import InputError, MissingDependency
from plait.models.loading import BACKENDS, register_backend
from plait.models.spec import ModelSpec
from plait.models.speech import SpeechRecognizer, Transcript, Word
from plait.models.vision import ImageClassifier
from plait.readers.audio import Audio, read_audio, resample
from plait.runtime import Runtime
from plait.settings import Settings
from plait.tasks.hear import hear, hear_many, word_error_rate
from plait.tasks.see import see, see_many
from tests.unit.test_cli import plait

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402


class FakeVision(ImageClassifier):
    """Three classes by the dominant colour channel: red → 'apple', green → 'leaf', blue → 'sky'."""

    labels = ("apple", "leaf", "sky")
    batch_size = 2

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.batches: list[int] = []

    def classify_batch(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.batches.append(len(images))
        means = np.array([np.asarray(im, dtype=np.float32).reshape(-1, 3).mean(axis=0) for im in images])
        e = np.exp(means / 20.0)
        return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


class FakeEar(SpeechRecognizer):
    """'Hears' how loud and long the audio is, so tests can check what reached the model."""

    sample_rate = 16000

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def transcribe_pcm(self, pcm: np.ndarray) -> Transcript:
        assert pcm.dtype == np.int16
        seconds = len(pcm) / self.sample_rate
        loud = "loud" if np.abs(pcm).max() > 8000 else "quiet"
        return Transcript(f"{loud} {seconds:.1f}", (Word(loud, 0.0, seconds, 1.0),), seconds)


def _loader(spec: ModelSpec, settings: Settings, models: object) -> ImageClassifier | SpeechRecognizer:
    return FakeVision(spec) if "see" in spec.capabilities else FakeEar(spec)


if "fake-media" not in BACKENDS:
    register_backend("fake-media", _loader)


@pytest.fixture
def media(fake_models: Runtime) -> Runtime:
    fake_models.catalog.add(ModelSpec(name="fake-vision", backend="fake-media", capabilities=("see",),
                                      source="fake"), replace=True)
    fake_models.catalog.add(ModelSpec(name="fake-ear", backend="fake-media", capabilities=("hear",),
                                      source="fake"), replace=True)
    return fake_models


def png(color: tuple[int, ...], mode: str = "RGB", size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def wav(samples: np.ndarray, rate: int) -> bytes:
    from scipy.io import wavfile

    buf = io.BytesIO()
    wavfile.write(buf, rate, samples)
    return buf.getvalue()


# ----- see ---------------------------------------------------------------------------------------------

def test_see_ranks_classes_and_keeps_order_across_batches(media: Runtime, tmp_path: Path) -> None:
    blue = tmp_path / "blue.png"
    blue.write_bytes(png((0, 0, 250)))
    results = see_many([png((250, 0, 0)), blue, png((0, 250, 0)), Image.new("RGB", (4, 4), (240, 10, 10))],
                       k=2, model="fake-vision")
    assert [r.labels[0].label for r in results] == ["apple", "sky", "leaf", "apple"]
    assert results[1].source == str(blue) and len(results[0].labels) == 2
    assert results[0].labels[0].score >= results[0].labels[1].score
    assert media.model("fake-vision", FakeVision).batches == [2, 2]


def test_see_reports_or_raises_on_non_images(media: Runtime, tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    truncated = png((1, 2, 3), size=(64, 64))[:60]
    results = see_many([text, png((250, 0, 0)), truncated, b"", tmp_path / "missing.png", tmp_path],
                       model="fake-vision", errors="report")
    assert results[1].top is not None and results[1].top.label == "apple"
    errors = [r.error for r in results]
    assert "not an image" in errors[0] and "damaged or truncated" in errors[2]
    assert "empty" in errors[3] and "does not exist" in errors[4] and "folder" in errors[5]
    with pytest.raises(InputError, match="not an image"):
        see(text, model="fake-vision")
    with pytest.raises(InputError, match="k must be at least 1"):
        see(png((1, 1, 1)), k=0, model="fake-vision")
    assert len(see(png((1, 1, 1)), k=50, model="fake-vision").labels) == 3
    with pytest.raises(InputError, match="no images"):
        see_many([], model="fake-vision")


def test_images_become_upright_rgb_with_white_behind_transparency() -> None:
    from plait.readers.image import open_image

    clear = open_image(png((255, 0, 0, 0), mode="RGBA"))
    assert clear.mode == "RGB" and clear.getpixel((0, 0)) == (255, 255, 255)
    assert open_image(png((128,), mode="L")).mode == "RGB"


def test_cli_see_prints_results_and_fails_cleanly(media: Runtime, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes(png((250, 0, 0)))
    (folder / "b.png").write_bytes(png((0, 0, 250)))
    (folder / "bad.jpg").write_text("hello")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    code, out, err = plait(capsys, "see", str(folder), "-m", "fake-vision", "-k", "1", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 4 and len(rows) == 3 and "Traceback" not in err
    assert [r.get("labels", [{}])[0].get("label") for r in rows] == ["apple", "sky", None]
    assert "1 of 3 inputs could not be read" in err
    code, out, _ = plait(capsys, "see", str(folder / "a.png"), "-m", "fake-vision", "-k", "2")
    assert code == 0 and out.splitlines()[0].endswith("apple") and len(out.splitlines()) == 2


def test_missing_vision_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.models.catalog import BUILTINS
    from plait.models.loading import load_model
    from plait.settings import load_settings

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)
    with pytest.raises(MissingDependency, match=r"plait\[vision\]"):
        load_model(BUILTINS["efficientnet-lite0"], load_settings())


# ----- audio and hear ----------------------------------------------------------------------------------

def test_reads_wav_in_any_format_to_mono_float() -> None:
    t = np.arange(44100) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo16 = (np.stack([tone, -tone * 0.0 + tone], axis=1) * 32767).astype(np.int16)
    audio = read_audio(wav(stereo16, 44100))
    assert audio.sample_rate == 44100 and audio.samples.ndim == 1 and audio.duration == pytest.approx(1.0)
    assert abs(audio.samples).max() == pytest.approx(0.5, abs=1e-3)
    u8 = read_audio(wav(((tone * 127) + 128).astype(np.uint8), 8000))
    assert abs(u8.samples).max() == pytest.approx(0.5, abs=0.02)
    f32 = read_audio(wav(tone.astype(np.float32), 22050))
    assert f32.samples.dtype == np.float32 and f32.resampled(16000).duration == pytest.approx(f32.duration, abs=1e-3)
    assert len(resample(np.zeros(22050, dtype=np.float32), 22050, 16000)) == 16000


@pytest.mark.parametrize(("data", "message"), [
    (b"", "empty"),
    (b"RIFF\x00\x00\x00\x00WAVEjunk", "not a readable WAV"),
    (b"ID3\x03 definitely an mp3", "not a WAV file"),
    (png((1, 2, 3)), "not a WAV file"),
])
def test_non_audio_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_audio(data)


def test_hear_resamples_for_the_model_and_reports_errors(media: Runtime, tmp_path: Path) -> None:
    loud = (np.sin(np.arange(22050 * 2) / 5) * 20000).astype(np.int16)
    path = tmp_path / "loud.wav"
    path.write_bytes(wav(loud, 22050))
    result = hear(path, model="fake-ear")
    assert result.text == "loud 2.0" and result.duration == pytest.approx(2.0, abs=1e-3)
    results = hear_many([path, tmp_path / "nope.wav", Audio(np.zeros(8000, np.float32), 8000, "memory")],
                        model="fake-ear", errors="report")
    assert results[1].error and "does not exist" in results[1].error
    assert results[2].text == "quiet 1.0" and results[2].source == "memory"
    with pytest.raises(InputError, match="does not exist"):
        hear_many([tmp_path / "nope.wav"], model="fake-ear")


def test_batch_runners_fail_only_the_bad_request_and_load_models_in_the_worker(media: Runtime) -> None:
    from plait.tasks import hear as hear_task
    from plait.tasks import see as see_task
    from plait.tasks.registry import encode_base64

    see_batch, hear_batch = see_task.TASK.batch, hear_task.TASK.batch
    assert see_batch is not None and hear_batch is not None
    run_see = see_batch.runner(see_task.SeeRequest(image="x", model="fake-vision", k=1), media)
    run_hear = hear_batch.runner(hear_task.HearRequest(audio="x", model="fake-ear"), media)
    assert media.pool.loaded() == []  # made on the event loop: no model loaded there
    seen = run_see(["not base64!", encode_base64(png((250, 0, 0))), ""])
    assert seen[0].error and "base64" in seen[0].error and seen[2].error
    assert seen[1].top is not None and seen[1].top.label == "apple"
    heard = run_hear([encode_base64(wav(np.zeros(16000, np.int16), 16000)), "%%%"])
    assert heard[0].text == "quiet 1.0" and heard[1].error and "base64" in heard[1].error
    media.pool.unload("fake-vision")  # the batch function holds no model of its own: it loads again
    assert run_see(["???"])[0].error and media.pool.loaded() == ["fake-ear"]
    again = run_see([encode_base64(png((0, 0, 250)))])[0].top
    assert again is not None and again.label == "sky"
    assert "fake-vision" in media.pool.loaded()


def test_cli_hear_json_and_bad_file(media: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "a.wav"
    good.write_bytes(wav(np.zeros(16000, np.int16), 16000))
    bad = tmp_path / "b.wav"
    bad.write_bytes(b"RIFF....not really")
    code, out, err = plait(capsys, "hear", str(good), str(bad), "-m", "fake-ear", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 4 and rows[0]["text"] == "quiet 1.0" and "error" in rows[1] and "Traceback" not in err


def test_word_error_rate() -> None:
    assert word_error_rate(["Hello, world."], ["hello world"]) == 0.0
    assert word_error_rate(["the cat sat"], ["the bat sat down"]) == pytest.approx(2 / 3)
    assert word_error_rate(["a b", "c d e f"], ["a", ""]) == pytest.approx(5 / 6)
    with pytest.raises(InputError):
        word_error_rate(["", " "], ["x", "y"])
    jiwer = pytest.importorskip("jiwer")
    refs = ["The meeting is moved to Tuesday.", "Please call Anna back"]
    hyps = ["the meeting is moving tuesday", "please call and a back today"]
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                          jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    assert word_error_rate(refs, hyps) == pytest.approx(
        jiwer.wer(refs, hyps, reference_transform=norm, hypothesis_transform=norm))


def test_missing_speech_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from plait.models.catalog import BUILTINS
    from plait.models.loading import load_model
    from plait.settings import load_settings

    monkeypatch.setitem(sys.modules, "pocketsphinx", None)
    with pytest.raises(MissingDependency, match=r"plait\[speech\]"):
        load_model(BUILTINS["pocketsphinx-en"], load_settings())


# ----- speak -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"text": "  "}, "empty"),
    ({"text": "x" * 50_001}, "split it"),
    ({"text": "hi", "rate": 10}, "rate must be"),
    ({"text": "hi", "pitch": 120}, "pitch must be"),
    ({"text": "hi", "voice": "--help"}, "not a voice name"),
])
def test_speak_refuses_bad_requests(kwargs: dict, message: str) -> None:
    from plait.tasks.speak import speak

    with pytest.raises(InputError, match=message):
        speak(**kwargs)


def test_speak_without_espeak_names_the_system_package(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from plait.tasks.speak import speak

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(MissingDependency, match="apt-get install espeak-ng"):
        speak("hello")
    code, _, err = plait(capsys, "speak", "hello", "-o", "/tmp/never.wav")
    assert code == 5 and "espeak-ng" in err and "Traceback" not in err
