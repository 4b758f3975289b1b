"""Compress real packaged models: each variant is registered, measured, and serves through the same task
functions as its original (embed, classify, generate); bad input registers nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plait.compress.data import EvalSet, classifier_eval, known_item
from plait.compress.measure import Timing
from plait.runtime import Runtime
from tests.corpora import lee_articles, newsgroups

pytestmark = pytest.mark.model
# Enough timing to exercise every measurement; the benchmark (bench/compress.py) times properly.
QUICK = Timing(latency_texts=3, rounds=1, chat_tokens=16, perplexity_windows=2)


def models_left(rt: Runtime) -> list[str]:
    return sorted(p.name for p in rt.settings.models_dir.iterdir() if p.name.endswith(".partial"))


def test_minilm_onnx_int8_is_smaller_faithful_and_embeds(runtime: Runtime) -> None:
    from plait.compress.variants import compress
    from plait.tasks.embed import embed

    out = compress("minilm", ["onnx-int8"], names=["minilm-test-int8"], eval_data=known_item(lee_articles()[:12]),
                   memory=False, timing=QUICK, runtime=runtime, replace=True)
    [spec] = out.variants
    assert out.report is not None
    original, variant = out.report.rows
    assert original.size_mb and variant.size_mb and original.size_mb / variant.size_mb >= 3
    assert variant.quality["cosine_fidelity"] >= 0.98
    assert abs(variant.quality["mrr@10"] - original.quality["mrr@10"]) <= 0.05
    assert spec.metrics["cosine_fidelity"] == variant.quality["cosine_fidelity"]
    a = embed(["The rocket reached orbit.", "Bread needs flour and yeast."], model="minilm-test-int8", runtime=runtime)
    b = embed(["The rocket reached orbit.", "Bread needs flour and yeast."], model="minilm", runtime=runtime)
    assert a.shape == b.shape == (2, 384) and float((a * b).sum(axis=1).min()) >= 0.98
    assert out.report_files["html"].exists() and models_left(runtime) == []


@pytest.fixture(scope="module")
def posts() -> tuple[list, list]:
    items = sorted(newsgroups(), key=lambda p: p.text)
    return items[::2][:40], items[1::2][:20]


@pytest.fixture(scope="module")
def news_head(posts: tuple[list, list], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """MiniLM with a linear head fitted (logistic regression) on its frozen mean-pooled token vectors."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from plait.adapt.networks import EncoderNet
    from plait.compress.distill import TrainConfig, teacher_targets
    from plait.models.catalog import BUILTINS
    from plait.models.encoder import build_module, save_module
    from plait.models.onnx import open_tokenizer

    train, _ = posts
    labels = sorted({p.label for p in train})
    folder = BUILTINS["minilm"].local_path()
    encoder = build_module(folder, "embed")
    pooled = teacher_targets(encoder, open_tokenizer(str(folder / "tokenizer.json"), 128), [p.text for p in train],
                             "embedder", TrainConfig(max_length=128)).numpy()
    head = LogisticRegression(max_iter=2000, C=10).fit(pooled, [labels.index(p.label) for p in train])
    net = EncoderNet(encoder, 2)
    # Two logits whose difference is the regression's score: the same decisions and probabilities.
    w = torch.tensor(head.coef_[0], dtype=torch.float32)
    net.head.weight.data = torch.stack([-w / 2, w / 2])
    net.head.bias.data = torch.tensor([-head.intercept_[0] / 2, head.intercept_[0] / 2], dtype=torch.float32)
    target = tmp_path_factory.mktemp("news-head")
    save_module(net.eval(), target, tokenizer=folder / "tokenizer.json", labels=labels)
    return target, labels


@pytest.fixture
def news_classifier(runtime: Runtime, news_head: tuple[Path, list[str]]) -> str:
    from plait.models.spec import ModelSpec

    folder, labels = news_head
    runtime.catalog.add(ModelSpec(name="news-head", backend="encoder", capabilities=("classify",),
                                  source=str(folder), options={"task": "classify", "labels": labels,
                                                               "max_length": 128}))
    return "news-head"


def test_classifier_variants_classify_like_the_original(runtime: Runtime, news_classifier: str,
                                                        posts: tuple[list, list]) -> None:
    from plait.compress.variants import compress
    from plait.tasks.classify import classify

    _, test = posts
    data = classifier_eval([p.text for p in test], [p.label for p in test], "20 held-out posts")
    out = compress(news_classifier, ["onnx-int8", "prune"], eval_data=data, memory=False, timing=QUICK,
                   runtime=runtime)
    assert out.report is not None
    original, int8, pruned = out.report.rows
    assert original.quality["accuracy"] >= 0.85
    assert int8.quality["agreement"] >= 0.95 and abs(int8.quality["accuracy"] - original.quality["accuracy"]) <= 0.05
    assert pruned.quality["agreement"] >= 0.9
    assert int8.size_mb and original.size_mb and original.size_mb / int8.size_mb >= 3
    names = [s.name for s in out.variants]
    assert names == ["news-head-onnx-int8", "news-head-prune"]
    results = classify([p.text for p in test[:6]], classifier="news-head-onnx-int8", runtime=runtime)
    assert [r.label for r in results] == [r.label for r in classify([p.text for p in test[:6]],
                                                                      classifier=news_classifier, runtime=runtime)]


def test_bad_input_registers_nothing(runtime: Runtime, news_classifier: str, tmp_path: Path) -> None:
    from plait.compress.budget import BudgetNotMet, compress_to_budget
    from plait.compress.variants import compress
    from plait.errors import CapabilityError, InputError

    before = set(runtime.catalog.names())
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("text,label\nThe shuttle launch slipped,sci.space\nBest pasta sauce?,cooking\nGod?,alt.atheism\n")
    with pytest.raises(InputError, match="does not know: cooking"):
        compress(news_classifier, ["onnx-int8"], eval_data=wrong, runtime=runtime)
    with pytest.raises(CapabilityError, match="does not apply"):
        compress(news_classifier, ["gguf-q4_0"], eval_data=wrong, runtime=runtime)
    data = classifier_eval(["The shuttle launch slipped again", "Is there a god?"] * 3,
                           ["sci.space", "alt.atheism"] * 3)
    with pytest.raises(BudgetNotMet, match=r"MB over the 1 MB budget"):
        compress_to_budget(news_classifier, budget_mb=1, eval_data=data, methods=["prune"], timing=QUICK,
                           runtime=runtime)
    assert set(runtime.catalog.names()) == before and models_left(runtime) == []


def test_smollm2_requantized_chats_with_measured_perplexity(runtime: Runtime) -> None:
    from plait.compress.variants import compress
    from plait.models.base import GenerationOptions, Message
    from plait.tasks.generate import chat

    data = EvalSet("chat", tuple(lee_articles()[:6]), source="6 Lee articles")
    out = compress("smollm2", ["gguf-q4_0"], names=["smollm2-test-q4_0"], eval_data=data, memory=False,
                   timing=QUICK, runtime=runtime, replace=True)
    assert out.report is not None
    original, variant = out.report.rows
    # Requantizing Q4_1 to Q4_0 loses a little more: perplexity a little higher, in the same range.
    ratio = variant.quality["perplexity"] / original.quality["perplexity"]
    assert np.isfinite(ratio) and 0.98 < ratio < 1.6 and original.quality["perplexity"] < 100
    assert variant.size_mb and original.size_mb and variant.size_mb < original.size_mb
    assert variant.throughput > 0 and out.variants[0].provenance["steps"][0]["type"] == "Q4_0"
    answer = chat([Message("user", "Say hello.")], model="smollm2-test-q4_0",
                  options=GenerationOptions(max_tokens=8, temperature=0), runtime=runtime)
    assert answer.text.strip()
