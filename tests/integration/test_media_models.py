"""see, hear and speak on the real packaged models: EfficientNet-Lite0, PocketSphinx and eSpeak NG."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from plait.runtime import Runtime
from tests.unit.test_cli import plait

pytestmark = pytest.mark.model

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
SENTENCES = [
    "The meeting with Anna is moved to Tuesday afternoon.",
    "Please send me the report before the end of the week.",
    "We need to finish the project by next month.",
]


def _photo(name: str) -> bytes:
    data = pytest.importorskip("skimage.data")
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(getattr(data, name)()).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def test_see_finds_the_cat_and_the_coffee(runtime: Runtime, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from plait.tasks.see import see_many

    cat, coffee = _photo("chelsea"), _photo("coffee")
    results = see_many([cat, coffee], k=3)
    assert any(label.index in CAT_CLASSES for label in results[0].labels), results[0]
    assert results[1].labels[0].label == "espresso" and results[1].labels[0].score > 0.5
    assert sum(x.score for x in results[0].labels) <= 1.0 + 1e-6
    path = tmp_path / "cat.jpg"
    path.write_bytes(cat)
    code, out, err = plait(capsys, "--home", str(runtime.settings.home), "see", str(path), "-k", "3")
    assert code == 0 and "cat" in out.lower(), err


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


@needs_espeak
def test_speak_then_hear(runtime: Runtime) -> None:
    from plait.tasks.hear import hear_many, word_error_rate
    from plait.tasks.speak import speak

    speech = [speak(s, rate=140) for s in SENTENCES]
    assert all(2.0 < s.duration < 8.0 and s.audio.sample_rate == 22050 for s in speech)
    heard = hear_many([s.wav_bytes() for s in speech])
    wer = word_error_rate(SENTENCES, [h.text for h in heard])
    # PocketSphinx on synthetic speech is rough (~0.4 over 20 sentences); far from the 1.0 of noise.
    assert wer < 0.7, [h.text for h in heard]
    for h, s in zip(heard, speech, strict=True):
        starts = [w.start for w in h.words]
        assert starts == sorted(starts) and all(0 <= w.start < w.end <= s.duration + 0.05 for w in h.words)


@needs_espeak
def test_cli_speak_and_hear_round_trip(runtime: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_wav = tmp_path / "hello.wav"
    home = str(runtime.settings.home)
    code, _, err = plait(capsys, "--home", home, "speak", "She is reading a book about the history of the country.",
                         "-o", str(out_wav), "--rate", "140")
    assert code == 0 and out_wav.stat().st_size > 10_000, err
    code, out, err = plait(capsys, "--home", home, "hear", str(out_wav))
    assert code == 0 and out.strip(), err
    assert len({"reading", "book", "history", "country"} & set(out.split())) >= 2, out


def test_a_transformers_image_classifier_plugs_into_see(runtime: Runtime, tmp_path: Path) -> None:
    """A hub-style model folder (here a tiny ViT saved with save_pretrained) works through the catalog."""
    transformers = pytest.importorskip("transformers")
    from plait.models.catalog import spec_from_source
    from plait.tasks.see import see

    labels = {0: "red thing", 1: "green thing", 2: "blue thing"}
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=32, num_labels=3, id2label=labels,
                                    label2id={v: k for k, v in labels.items()})
    folder = tmp_path / "tiny-vit"
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    runtime.catalog.add(spec_from_source("tiny-vit", str(folder), backend="transformers-image",
                                         capabilities=("see",)))
    result = see(_photo("coffee"), k=3, model="tiny-vit")
    assert sorted(x.label for x in result.labels) == sorted(labels.values())
    assert sum(x.score for x in result.labels) == pytest.approx(1.0, abs=1e-4)
