"""plait tune with the fake embedder: registration as NAME@V, tracking, reproducibility, interruption, explain, CLI."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from plait.adapt import TuneConfig, tune
from plait.adapt.registry import publish
from plait.adapt.tracking import compare_runs, epoch_metrics, get_run, list_runs
from plait.errors import CatalogError, InputError, ModelNotFound
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from plait.tasks.classifiers import Classifier
from tests.cli import plait

BILLING = "invoice payment overdue amount account bank transfer receipt tax refund".split()
FAMILY = "dinner grandma weekend kids birthday holiday garden picnic cousin visit".split()
FILLER = "the a and please about for with this that our your".split()


def mail_csv(path: Path, n: int = 24, seed: int = 0, minority: int | None = None) -> Path:
    import csv

    rng = random.Random(seed)
    rows = []
    for label, words, count in (("billing", BILLING, n), ("family", FAMILY, minority or n)):
        for _ in range(count):
            text = " ".join(rng.sample(words, 3) + rng.sample(FILLER, 4))
            rows.append((text, label))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def head_config(**kw: object) -> TuneConfig:
    options: dict[str, object] = {"method": "head", "base": "fake-embed", "epochs": 15, "learning_rate": 0.05, **kw}
    return TuneConfig(**options)  # type: ignore[arg-type]


def test_tune_registers_versions_usable_by_name(fake_models: Runtime, tmp_path: Path) -> None:
    data = mail_csv(tmp_path / "mail.csv")
    first = tune("triage", data, head_config(), runtime=fake_models)
    assert first.model == "triage@1"
    assert first.metrics["accuracy"] > 0.8 and "per_label" in first.metrics
    second = tune("triage", data, head_config(tune_threshold=True), runtime=fake_models)
    assert second.model == "triage@2"
    spec = fake_models.catalog.get("triage")  # the bare name is the newest version
    assert spec.name == "triage@2" and spec.version == 2 and "classify" in spec.capabilities
    assert spec.provenance["method"] == "head" and spec.provenance["data_hash"]
    assert spec.provenance["run_id"] == second.run_id and spec.metrics["macro_f1"] == pytest.approx(
        second.metrics["macro_f1"], abs=1e-6)
    assert set(spec.options["thresholds"]) and len(spec.options["thresholds"]) == 2
    assert fake_models.catalog.versions("triage") == [1, 2]
    assert (fake_models.settings.models_dir / "triage@2" / "head.safetensors").exists()
    clf = fake_models.model("triage", Classifier)
    result = clf.classify(["overdue invoice payment for your account", "grandma birthday dinner with the kids"])
    assert [r.label for r in result] == ["billing", "family"]
    assert fake_models.model("triage@1", Classifier).labels == ("billing", "family")


def test_runs_are_recorded_with_epochs_tensorboard_and_plots(fake_models: Runtime, tmp_path: Path) -> None:
    result = tune("triage", mail_csv(tmp_path / "mail.csv"), head_config(), runtime=fake_models)
    record = get_run(fake_models.store, result.run_id)
    assert record.status == "completed" and record.model == "triage@1" and record.duration_s is not None
    assert record.params["method"] == "head" and record.hardware["cores"]
    epochs = epoch_metrics(fake_models.store, result.run_id)
    assert len(epochs["train"]["loss"]) >= 1
    assert "macro_f1" in epochs["validation"] and "accuracy" in epochs["test"]
    run_dir = Path(record.run_dir)
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert (run_dir / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "confusion_matrix.png").exists()
    assert get_run(fake_models.store, "triage@1").id == result.run_id  # by the model it made
    assert get_run(fake_models.store, result.run_id[:17]).id == result.run_id  # by a unique prefix
    with pytest.raises(InputError, match="no training run"):
        get_run(fake_models.store, "nothing")


def test_same_seed_same_model(fake_models: Runtime, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    data = mail_csv(tmp_path / "mail.csv")
    a = tune("a", data, head_config(seed=3), runtime=fake_models)
    b = tune("b", data, head_config(seed=3), runtime=fake_models)
    c = tune("c", data, head_config(seed=4), runtime=fake_models)
    models = fake_models.settings.models_dir
    wa, wb, wc = (load_file(str(models / f"{n}@1" / "head.safetensors"))["weight"] for n in "abc")
    assert np.array_equal(wa, wb) and not np.array_equal(wa, wc)
    assert a.metrics["macro_f1"] == b.metrics["macro_f1"]
    cmp = compare_runs(fake_models.store, [a.run_id, c.run_id])
    assert cmp["same_data"] and cmp["params"]["seed"] == [3, 4]


def test_interrupted_run_registers_nothing(fake_models: Runtime, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import plait.adapt.finetune as finetune

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tune("triage", mail_csv(tmp_path / "mail.csv"), head_config(), runtime=fake_models)
    (record,) = list_runs(fake_models.store)
    assert record.status == "interrupted" and record.model is None
    with pytest.raises(ModelNotFound):
        fake_models.catalog.get("triage")
    assert not [p for p in fake_models.settings.models_dir.iterdir() if "triage" in p.name]


def test_failed_registration_leaves_no_files(fake_models: Runtime, tmp_path: Path) -> None:
    models = fake_models.settings.models_dir
    staging = models / ".x.partial"
    staging.mkdir(parents=True)
    (staging / "head.safetensors").write_bytes(b"data")

    def broken(name: str, version: int, folder: Path) -> ModelSpec:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        publish(fake_models.catalog, models, "x", staging, broken)
    assert not (models / "x@1").exists() and fake_models.catalog.versions("x") == []
    # A version already taken (in the catalog) is skipped, not overwritten.
    fake_models.catalog.add(ModelSpec(name="x@1", backend="fake", capabilities=("embed",), source="fake"))
    spec = publish(fake_models.catalog, models, "x", staging,
                   lambda n, v, f: ModelSpec(name=n, backend="adapted", capabilities=("classify",), source=str(f),
                                             version=v))
    assert spec.name == "x@2" and (models / "x@2" / "head.safetensors").exists()


def test_bad_names_and_configs(fake_models: Runtime, tmp_path: Path) -> None:
    data = mail_csv(tmp_path / "mail.csv")
    with pytest.raises(InputError, match="cannot name a model"):
        tune("tri@ge", data, head_config(), runtime=fake_models)
    with pytest.raises(InputError, match="built-in"):
        tune("smollm2", data, head_config(), runtime=fake_models)
    with pytest.raises(InputError, match="--method lora"):
        TuneConfig(task="instruct", method="head")
    with pytest.raises(InputError, match="single-label"):
        TuneConfig(task="multilabel", oversample=True)
    assert not list_runs(fake_models.store)  # nothing started


def test_imbalance_options_run(fake_models: Runtime, tmp_path: Path) -> None:
    data = mail_csv(tmp_path / "skewed.csv", n=36, minority=8)
    result = tune("skewed", data, head_config(class_weights=True, oversample=True, tune_threshold=True),
                  runtime=fake_models)
    assert result.metrics["per_label"]["family"]["support"] >= 1
    assert set(result.metrics["thresholds"]) == {"billing", "family"}


def test_explain_occlusion_finds_the_deciding_words(fake_models: Runtime, tmp_path: Path) -> None:
    from plait.tasks.explain import deletion_drop, explain, render_html, render_terminal

    tune("triage", mail_csv(tmp_path / "mail.csv", n=40), head_config(epochs=40), runtime=fake_models)
    text = "please find the overdue invoice for our account with this note"
    e = explain("triage", text, runtime=fake_models)
    assert e.method == "occlusion" and e.label == "billing"
    assert {w.text for w in e.top(3)} <= {"overdue", "invoice", "account"} | set(FILLER)
    assert {w.text for w in e.top(2)} & {"overdue", "invoice", "account"}
    top, rand = deletion_drop(fake_models.model("triage", Classifier), e, 2)
    assert top > rand
    page = render_html(e)
    assert page.startswith("<!doctype html>") and "title=" in page and "overdue" in page
    assert render_terminal(e).plain == text
    family = explain("triage", text, label="family", runtime=fake_models)
    assert family.label == "family"
    with pytest.raises(InputError, match="not one of the model's labels"):
        explain("triage", text, label="spam", runtime=fake_models)


def test_explain_refuses_non_classifiers(fake_models: Runtime) -> None:
    from plait.errors import CapabilityError
    from plait.tasks.explain import explain

    with pytest.raises(CapabilityError, match="not a classifier"):
        explain("fake-chat", "hello there", runtime=fake_models)


def test_cli_tune_runs_explain(fake_models: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = mail_csv(tmp_path / "mail.csv")
    code, out, err = plait(capsys, "tune", "triage", "--data", str(data), "--base", "fake-embed", "--epochs", "10",
                           "--lr", "0.05", "--tune-threshold")
    assert code == 0, err
    assert out.startswith("triage@1") and "macro_f1" in out and "thresholds" in out and "registered triage@1" in err
    code, out, _ = plait(capsys, "runs", "list", "--json")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["status"] == "completed" and row["model"] == "triage@1"
    code, out, _ = plait(capsys, "runs", "show", "triage@1")
    assert code == 0 and "validation macro_f1" in out and "tensorboard" in out
    plait(capsys, "tune", "triage", "--data", str(data), "--base", "fake-embed", "--epochs", "5", "--seed", "9")
    code, out, _ = plait(capsys, "runs", "compare", "triage@1", "triage@2", "--json")
    assert code == 0 and json.loads(out)["params"]["seed"] == [0, 9]
    code, out, _ = plait(capsys, "models", "info", "triage", "--json")
    info = json.loads(out)
    assert info["name"] == "triage@2" and info["provenance"]["method"] == "head" and info["metrics"]
    html = tmp_path / "why.html"
    code, out, err = plait(capsys, "explain", "triage", "overdue invoice for the account", "--html", str(html))
    assert code == 0, err
    assert "billing" in out and "strongest:" in out and html.read_text().count("<span") >= 4
    code, out, _ = plait(capsys, "explain", "triage", "overdue invoice", "--json")
    assert json.loads(out)["label"] == "billing"


def test_cli_bad_input_is_one_line(fake_models: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.csv"
    one.write_text("text,label\na,x\nb,x\nc,x\nd,y\n", encoding="utf-8")
    code, _, err = plait(capsys, "tune", "t", "--data", str(one), "--base", "fake-embed")
    assert code == 4 and "'y' (1)" in err and "Traceback" not in err
    missing = tmp_path / "missing.csv"
    missing.write_text("text,label\na,x\nb,\n", encoding="utf-8")
    code, _, err = plait(capsys, "tune", "t", "--data", str(missing), "--base", "fake-embed")
    assert code == 4 and "missing.csv:3" in err
    code, _, err = plait(capsys, "tune", "t", "--data", str(missing), "--method", "magic")
    assert code == 4 and "--method" in err
    code, _, err = plait(capsys, "runs", "show", "zzz")
    assert code == 4 and "no training run" in err
    code, _, err = plait(capsys, "explain", "nosuchmodel", "text")
    assert code == 6 and "unknown model" in err


def test_catalog_versions_do_not_shadow_exact_names(fake_models: Runtime) -> None:
    cat = fake_models.catalog
    for name in ("m@1", "m@3", "m@2", "mx@9", "m"):
        cat.add(ModelSpec(name=name, backend="fake", capabilities=("embed",), source="fake"))
    assert cat.versions("m") == [1, 2, 3]
    assert cat.get("m").name == "m"  # an exact entry wins
    cat.remove("m")
    assert cat.get("m").name == "m@3"
    with pytest.raises(CatalogError):
        cat.add(ModelSpec(name="m@3", backend="fake", capabilities=("embed",), source="fake"))


def test_missing_extras_are_named(fake_models: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from plait.errors import CapabilityError, MissingDependency
    from plait.tasks.explain import explain

    data = mail_csv(tmp_path / "mail.csv")
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` raises ImportError
    with pytest.raises(MissingDependency, match=r"plait\[adapt\].*peft"):
        tune("t", data, TuneConfig(method="lora"), runtime=fake_models)
    (record,) = list_runs(fake_models.store)
    assert record.status == "failed" and "peft" in (record.error or "")
    tune("t", data, head_config(), runtime=fake_models)
    monkeypatch.setitem(sys.modules, "captum", None)
    assert explain("t", "overdue invoice", runtime=fake_models).method == "occlusion"
    with pytest.raises(CapabilityError, match="use --method occlusion"):
        explain("t", "overdue invoice", method="integrated-gradients", runtime=fake_models)


def test_server_explains_a_tuned_model(fake_models: Runtime, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from plait.serve.app import create_app
    from plait.serve.auth import KeyStore, ensure_local_key

    tune("triage", mail_csv(tmp_path / "mail.csv", n=30), head_config(epochs=30), runtime=fake_models)
    key = ensure_local_key(KeyStore(fake_models.store), fake_models.settings.home)
    app = create_app(fake_models.settings, runtime=fake_models)
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {key}"}) as client:
        r = client.post("/v1/explain", json={"model": "triage", "text": "the overdue invoice for your account"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["label"] == "billing" and body["method"] == "occlusion"
        assert [w["text"] for w in body["words"]][:2] == ["the", "overdue"]
        r = client.post("/v1/classify", json={"texts": ["grandma birthday dinner"], "classifier": "triage"})
        assert r.status_code == 200 and "family" in r.text
        r = client.post("/v1/explain", json={"model": "triage", "text": "x", "label": "nope"})
        assert r.status_code in (400, 422)
        assert client.post("/v1/explain", json={"model": "triage", "text": "x", "extra": 1}).status_code in (400, 422)
