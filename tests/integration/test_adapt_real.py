"""plait tune and explain against the real packaged models (MiniLM, SmolLM2) on real posts and news."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from plait.adapt import TuneConfig, tune
from plait.models.base import GenerationOptions, Message, TextGenerator
from plait.runtime import Runtime
from plait.tasks.classifiers import Classifier
from tests.corpora import lee_articles, newsgroups, split_sentences

pytestmark = pytest.mark.model


def posts_csv(path: Path, per_label: int) -> Path:
    posts = newsgroups()
    chosen = [p for p in posts if p.label == "alt.atheism"][:per_label] + \
             [p for p in posts if p.label == "sci.space"][:per_label]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows((p.text, p.label) for p in chosen)
    return path


def held_out_posts(n: int) -> list[tuple[str, str]]:
    posts = newsgroups()
    return [(p.text, p.label) for label in ("alt.atheism", "sci.space")
            for p in [q for q in posts if q.label == label][60:60 + n]]


def test_finetune_encoder_then_classify_and_explain(runtime: Runtime, tmp_path: Path) -> None:
    from plait.tasks.classify import classify
    from plait.tasks.explain import deletion_drop, explain

    result = tune("posts", posts_csv(tmp_path / "posts.csv", 12), TuneConfig(method="finetune", epochs=1,
                                                                             max_length=48), runtime=runtime)
    assert result.model == "posts@1"
    assert result.trainable_params == result.total_params > 20_000_000
    unseen = held_out_posts(3)
    results = classify([t for t, _ in unseen], classifier="posts", runtime=runtime)
    assert sum(r.label == gold for r, (_, gold) in zip(results, unseen, strict=True)) >= 4
    clf = runtime.model("posts@1", Classifier)
    wins = 0
    for text, _ in (unseen[0], unseen[3]):
        e = explain(clf, text, method="integrated-gradients", steps=8)
        assert e.method == "integrated-gradients" and any(w.score != 0 for w in e.words)
        window = clf.torch_scorer.tokenizer([text], truncation=True, max_length=48,  # type: ignore[union-attr]
                                            return_offsets_mapping=True)["offset_mapping"][0]
        seen = [w for w in e.words if w.end <= max(b for _, b in window)]
        top, rand = deletion_drop(clf, e, 3, candidates=seen)
        wins += top > rand
    assert wins >= 1


def test_lora_encoder_is_small_and_serves(runtime: Runtime, tmp_path: Path) -> None:
    result = tune("posts", posts_csv(tmp_path / "posts.csv", 12), TuneConfig(method="lora", epochs=1,
                                                                             max_length=48), runtime=runtime)
    assert result.trainable_params < 0.01 * result.total_params
    folder = runtime.settings.models_dir / result.model
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 3_000_000  # adapter + head only
    unseen = held_out_posts(3)
    predictions = runtime.model("posts", Classifier).classify([t for t, _ in unseen])
    assert sum(p.label == gold for p, (_, gold) in zip(predictions, unseen, strict=True)) >= 4


def test_head_on_default_embedder_with_occlusion(runtime: Runtime, tmp_path: Path) -> None:
    from plait.tasks.explain import explain

    result = tune("topics", posts_csv(tmp_path / "posts.csv", 20), TuneConfig(tune_threshold=True), runtime=runtime)
    spec = runtime.catalog.get("topics")
    assert spec.options["embedder"] == runtime.settings.embed_model and spec.options["kind"] == "head"
    assert result.metrics["accuracy"] >= 0.8
    unseen = held_out_posts(4)
    clf = runtime.model("topics", Classifier)
    predictions = clf.classify([t for t, _ in unseen])
    assert sum(p.label == gold for p, (_, gold) in zip(predictions, unseen, strict=True)) >= 6
    e = explain("topics", "NASA plans another shuttle launch to repair the orbiting telescope", runtime=runtime)
    assert e.method == "occlusion" and e.label == "sci.space"
    assert {w.text for w in e.top(3)} & {"NASA", "shuttle", "launch", "orbiting", "telescope"}


# Converts SmolLM2 from GGUF and trains LoRA: minutes on 2 cores, so more than the suite's default limit.
@pytest.mark.timeout(900)
def test_instruct_lora_on_smollm2_is_served(runtime: Runtime, tmp_path: Path) -> None:
    articles = [a for a in lee_articles() if len(a.split()) > 60][:9]
    path = tmp_path / "headlines.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for a in articles:
            lead = split_sentences(a)[0]
            answer = "HEADLINE: " + " ".join(w.capitalize() for w in lead.split()[:8])
            fh.write(json.dumps({"prompt": "Write a headline for this news story.\n\n" + " ".join(a.split()[:30]),
                                 "response": answer}) + "\n")
    result = tune("headline", path, TuneConfig(task="instruct", method="lora", epochs=1, max_length=96,
                                               batch_size=4, learning_rate=1e-3, validation=0.2, test=0.2),
                  runtime=runtime)
    assert result.model == "headline@1"
    assert result.metrics["test_loss"] < result.metrics["base_test_loss"]
    spec = runtime.catalog.get("headline")
    assert spec.capabilities == ("chat", "complete") and spec.options["kind"] == "chat-lora"
    assert result.trainable_params < 0.02 * result.total_params
    model = runtime.model("headline", TextGenerator)
    reply = model.chat([Message("user", "Write a headline for this news story.\n\n" + articles[-1][:200])],
                       GenerationOptions(max_tokens=12, temperature=0.0))
    assert reply.text.strip() and reply.usage.completion_tokens > 0
