"""Compress with fake models: method rules, all-or-nothing registration, reports, budgets, bad input, CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from plait.compress.budget import BudgetNotMet, compress_to_budget
from plait.compress.data import EvalSet, check_labels, classifier_eval, known_item
from plait.compress.measure import Measurement
from plait.compress.methods import METHODS, BuildContext, Built, Method, get_method, resolve_chain
from plait.compress.report import Report
from plait.compress.source import source_of
from plait.compress.variants import check_chain, compress, default_name
from plait.errors import BackendError, CapabilityError, CatalogError, InputError
from plait.models.base import Embedder
from plait.models.spec import ModelSpec
from plait.runtime import Runtime
from tests.unit.test_cli import plait

DOCS = [f"Report {i} on topic {i}. It discusses subject {i} and item {i} at length. More about case {i} here."
        for i in range(12)]


def _writer(size: int, *, fail: BaseException | None = None) -> object:
    def build(ctx: BuildContext) -> Built:
        (ctx.out / "weights.bin").write_bytes(b"\0" * size)
        if fail is not None:
            raise fail
        return Built("fake", "weights.bin", {"note": "{folder}/weights.bin"}, {"bytes": size})
    return build


@pytest.fixture
def test_methods(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Methods that apply to the fake models (backend 'fake') and write files of a known size."""
    monkeypatch.setattr(Report, "chart", lambda self: None)  # charts are tested once, below; they take a while
    other = frozenset({"other"})
    for name, size, fail in [("small", 1_000, None), ("big", 200_000, None), ("broken", 10, RuntimeError("boom")),
                             ("interrupted", 10, KeyboardInterrupt())]:
        monkeypatch.setitem(METHODS, name, Method(name, f"test method {name}", frozenset({"embedder", "classifier"}),
                                                  other, _writer(size, fail=fail), produces="other"))
    yield


def leftovers(rt: Runtime) -> list[str]:
    folder = rt.settings.models_dir
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_methods_apply_by_kind_and_family(fake_models: Runtime) -> None:
    chat = source_of(ModelSpec(name="c", backend="llamacpp", capabilities=("chat",), source="x.gguf"))
    embed = source_of(ModelSpec(name="e", backend="sentence-transformers", capabilities=("embed",), source="x"))
    onnx = source_of(ModelSpec(name="o", backend="onnx", capabilities=("embed",), source="x.onnx"))
    assert get_method("gguf-q4_0").applies(chat) and not get_method("prune").applies(chat)
    assert get_method("prune").applies(embed) and not get_method("gguf-q8_0").applies(embed)
    assert get_method("onnx-int8").applies(onnx) and not get_method("distill").applies(onnx)
    with pytest.raises(CapabilityError, match="does not apply to 'c'.*gguf-q4_0"):
        check_chain(chat, resolve_chain("prune"))
    # A chain is checked step by step before anything is built: nothing PyTorch follows an ONNX export.
    with pytest.raises(CapabilityError, match="'distill' does not apply"):
        check_chain(embed, resolve_chain("onnx-int8+distill"))
    with pytest.raises(CapabilityError, match="'onnx' does not apply"):
        check_chain(embed, resolve_chain("torch-int8+onnx"))
    check_chain(embed, resolve_chain("distill+onnx-int8"))
    with pytest.raises(InputError, match="unknown compression method 'nope'"):
        resolve_chain("nope")
    with pytest.raises(InputError):
        resolve_chain("prune+")


def test_default_names() -> None:
    assert default_name("minilm", "onnx-int8") == "minilm-onnx-int8"
    assert default_name("news@2", "distill+onnx-int8") == "news-v2-distill-onnx-int8"


def test_variant_is_registered_with_provenance_and_report(fake_models: Runtime, test_methods: None) -> None:
    out = compress("fake-embed", ["small"], eval_data=known_item(DOCS, "docs"), memory=False, runtime=fake_models)
    [spec] = out.variants
    assert spec.name == "fake-embed-small" and spec.backend == "fake"
    folder = fake_models.settings.models_dir / "fake-embed-small"
    assert Path(spec.source) == folder / "weights.bin" and (folder / "weights.bin").stat().st_size == 1_000
    assert spec.options["note"] == f"{folder}/weights.bin"  # placeholders point at the final folder
    assert spec.provenance["parent"] == "fake-embed" and spec.provenance["method"] == "small"
    assert spec.provenance["steps"] == [{"bytes": 1000}] and spec.provenance["eval"] == "docs"
    assert spec.metrics["mrr@10"] == out.report.rows[1].quality["mrr@10"]  # type: ignore[union-attr]
    assert fake_models.catalog.get("fake-embed-small").provenance["parent"] == "fake-embed"
    # The variant serves through the same interface as its parent.
    assert fake_models.model("fake-embed-small", Embedder).embed("hello").shape == (64,)
    data = json.loads(out.report_files["json"].read_text())
    assert [r["label"] for r in data["rows"]] == ["fake-embed (original)", "fake-embed-small"]
    assert "<table>" in out.report_files["html"].read_text()
    assert leftovers(fake_models) == ["fake-embed-small"]  # no staging folders left


def test_failed_build_registers_nothing(fake_models: Runtime, test_methods: None) -> None:
    names = set(fake_models.catalog.names())
    with pytest.raises(BackendError, match="broken on 'fake-embed' failed: RuntimeError: boom"):
        compress("fake-embed", ["small", "broken"], eval_data=known_item(DOCS), memory=False, runtime=fake_models)
    assert set(fake_models.catalog.names()) == names
    assert leftovers(fake_models) == []  # the finished 'small' was staged, not registered: removed too


def test_interrupted_build_leaves_nothing(fake_models: Runtime, test_methods: None) -> None:
    with pytest.raises(KeyboardInterrupt):
        compress("fake-embed", ["interrupted"], eval_data=known_item(DOCS), memory=False, runtime=fake_models)
    assert "fake-embed-interrupted" not in fake_models.catalog.names() and leftovers(fake_models) == []


def test_chain_keeps_only_the_last_step(fake_models: Runtime, test_methods: None) -> None:
    out = compress("fake-embed", ["big+small"], measure_variants=False, runtime=fake_models)
    assert out.report is None and [s.name for s in out.variants] == ["fake-embed-big-small"]
    assert out.variants[0].provenance["steps"] == [{"bytes": 200_000}, {"bytes": 1_000}]
    assert leftovers(fake_models) == ["fake-embed-big-small"]


def test_existing_name_is_refused_before_building(fake_models: Runtime, test_methods: None) -> None:
    compress("fake-embed", ["small"], measure_variants=False, runtime=fake_models)
    with pytest.raises(CatalogError, match="already exists"):
        compress("fake-embed", ["small"], measure_variants=False, runtime=fake_models)
    out = compress("fake-embed", ["big"], names=["fake-embed-small"], measure_variants=False, replace=True,
                   runtime=fake_models)
    assert out.variants[0].provenance["method"] == "big"
    assert (fake_models.settings.models_dir / "fake-embed-small" / "weights.bin").stat().st_size == 200_000
    with pytest.raises(InputError, match="cannot name a model"):
        compress("fake-embed", ["small"], names=["bad name"], measure_variants=False, runtime=fake_models)


def test_method_for_another_kind_is_refused(fake_models: Runtime) -> None:
    with pytest.raises(CapabilityError, match="does not apply to 'fake-chat'"):
        compress("fake-chat", ["prune"], runtime=fake_models)
    assert leftovers(fake_models) == []


@pytest.fixture
def fake_classifier(fake_models: Runtime) -> Runtime:
    fake_models.catalog.add(ModelSpec(name="fake-clf", backend="fake", capabilities=("classify",), source="fake",
                                      options={"labels": ["sci.space", "alt.atheism"]}))
    return fake_models


def test_eval_with_unknown_labels_is_refused_before_building(fake_classifier: Runtime, test_methods: None,
                                                             tmp_path: Path) -> None:
    data = tmp_path / "eval.csv"
    data.write_text("text,label\nthe moon landing,sci.space\nrecipes for soup,cooking\nrockets,sci.space\n")
    with pytest.raises(InputError, match=r"label\(s\) the classifier does not know: cooking"):
        compress("fake-clf", ["small"], eval_data=data, runtime=fake_classifier)
    with pytest.raises(InputError, match="needs held-out labelled examples"):
        compress("fake-clf", ["small"], runtime=fake_classifier)
    assert leftovers(fake_classifier) == [] and "fake-clf-small" not in fake_classifier.catalog.names()


def test_distillation_of_a_classifier_needs_training_texts(fake_models: Runtime, tmp_path: Path) -> None:
    fake_models.catalog.add(ModelSpec(name="clf", backend="encoder", capabilities=("classify",),
                                      source=str(tmp_path), options={"labels": ["a", "b"]}))
    with pytest.raises(InputError, match="give --train DATA"):
        compress("clf", ["distill"], eval_data=classifier_eval(["x"], ["a"]), runtime=fake_models)


def test_eval_sets_are_checked() -> None:
    data = known_item(DOCS)
    assert len(data.queries) == len(data.texts) == 12
    assert data.queries[0].startswith("Report 0") and "Report 0" not in data.texts[0]
    with pytest.raises(InputError, match="at least 10 documents"):
        known_item(DOCS[:3])
    with pytest.raises(InputError, match="one label per text"):
        EvalSet("classifier", ("a", "b"), (("x",),))
    check_labels([("a",), ("b",)], ["a", "b"], "f")
    with pytest.raises(InputError, match="does not know: c"):
        check_labels([("a",), ("c",)], ["a", "b"], "f")


def _report(kind: str = "classifier") -> Report:
    metric = {"classifier": "accuracy", "embedder": "mrr@10", "chat": "perplexity"}[kind]
    original = {"chat": 20.0}.get(kind, 0.9)
    rows = [Measurement("m (original)", "original", 90.0, 40.0, 55.0, 100.0, "texts/s", {metric: original}),
            Measurement("m-int8", "onnx-int8", 22.5, 10.0, 14.0, 300.0, "texts/s",
                        {metric: original - 0.01 if kind != "chat" else 20.5}),
            Measurement("m-small", "distill", 30.0, 5.0, 8.0, 600.0, "texts/s",
                        {metric: original - 0.05 if kind != "chat" else 25.0})]
    return Report("m", kind, "eval.csv", 100, rows)  # type: ignore[arg-type]


def test_report_ratios_table_and_files(tmp_path: Path) -> None:
    report = _report()
    c = report.compared(report.rows[1])
    assert c == {"smaller_x": 4.0, "faster_x": 4.0, "throughput_x": 3.0, "quality_change": -1.0}
    text = report.text()
    assert "m-int8" in text and "4x" in text and "-1" in text
    files = report.write(tmp_path / "r")
    data = json.loads(files["json"].read_text())
    assert data["primary_metric"] == "accuracy" and data["rows"][2]["vs_original"]["faster_x"] == 8.0
    page = files["html"].read_text()
    assert "m-small" in page
    if "chart" in files:
        assert files["chart"].read_bytes().startswith(b"\x89PNG") and "data:image/png;base64," in page
    chat = _report("chat")
    assert chat.compared(chat.rows[2])["quality_change"] == 5.0  # perplexity, not points


def test_budget_verdicts_say_what_fails_and_by_how_much() -> None:
    from plait.compress.budget import shortfall, verdict

    report = _report()
    assert verdict(report, report.rows[1], 12, 25, 2.0) is None
    assert verdict(report, report.rows[1], 8, None, 2.0) == "10 ms > 8 ms"
    assert "loses 5.00 points" in (verdict(report, report.rows[2], 8, None, 2.0) or "")
    assert "2.0 ms over the 3 ms budget" in shortfall(report, 3, None, 2.0)
    assert "7.5 MB over the 15 MB budget" in shortfall(report, None, 15, 2.0)
    assert "m-small fits but loses 5.00 points" in shortfall(report, 8, None, 2.0)
    chat = _report("chat")
    assert "loses 5.00 perplexity" in (verdict(chat, chat.rows[2], None, None, 1.0) or "")


def test_budget_registers_the_best_that_fits(fake_models: Runtime, test_methods: None) -> None:
    result = compress_to_budget("fake-embed", budget_mb=0.1, eval_data=known_item(DOCS), methods=["big", "small"],
                                runtime=fake_models)
    assert result.chosen.name == "fake-embed-fit" and result.chosen.provenance["method"] == "small"
    assert result.chosen.provenance["budget"]["mb"] == 0.1
    assert "fake-embed-big" in result.reasons and "MB > 0.1 MB" in result.reasons["fake-embed-big"]
    assert leftovers(fake_models) == ["fake-embed-fit"]


def test_budget_nobody_meets_registers_nothing(fake_models: Runtime, test_methods: None) -> None:
    names = set(fake_models.catalog.names())
    with pytest.raises(BudgetNotMet, match=r"smallest variant \(fake-embed-small\) is 0.* MB over the 0.0001 MB"):
        compress_to_budget("fake-embed", budget_mb=0.0001, eval_data=known_item(DOCS), methods=["big", "small"],
                           runtime=fake_models)
    assert set(fake_models.catalog.names()) == names and leftovers(fake_models) == []
    with pytest.raises(InputError, match="give a budget"):
        compress_to_budget("fake-embed", runtime=fake_models)
    with pytest.raises(InputError, match="positive"):
        compress_to_budget("fake-embed", budget_ms=0, runtime=fake_models)


def test_cli_errors_are_one_line(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = plait(capsys, "compress", "fake-chat", "--method", "prune")
    assert code == 6 and err.count("\n") == 1 and "does not apply to 'fake-chat'" in err
    code, _, err = plait(capsys, "compress", "fake-embed", "--method", "nope")
    assert code == 4 and "unknown compression method 'nope'" in err
    code, _, err = plait(capsys, "compress", "fake-embed")
    assert code == 4 and "give a method" in err
    code, _, err = plait(capsys, "compress", "minilm", "--budget-ms", "-3")
    assert code == 4 and "positive" in err


def test_cli_lists_methods(fake_models: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = plait(capsys, "compress", "smollm2", "--list")
    assert code == 0 and "gguf-q8_0" in out and "prune" not in out
    code, out, _ = plait(capsys, "compress", "minilm", "--list")
    assert code == 0 and "distill" in out and "onnx-int8" in out and "gguf" not in out


def test_cli_compresses_and_reports(fake_models: Runtime, test_methods: None, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS))
    code, out, _ = plait(capsys, "compress", "fake-embed", "-M", "small", "--eval", str(docs), "--no-memory",
                         "--report-dir", str(tmp_path / "report"))
    assert code == 0 and "registered fake-embed-small" in out and "mrr@10" in out
    assert (tmp_path / "report" / "report.json").exists()
    code, out, _ = plait(capsys, "compress", "fake-embed", "--compare", "fake-embed-small", "--eval", str(docs),
                         "--no-memory", "--report-dir", str(tmp_path / "again"))
    assert code == 0 and "fake-embed-small" in out and (tmp_path / "again" / "report.html").exists()


def test_missing_extras_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys

    from plait.compress.gguf import requantize
    from plait.compress.quantize import quantize_dynamic_int8
    from plait.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(MissingDependency, match=r"plait\[llama-cpp-python\]"):
        requantize(tmp_path / "a.gguf", tmp_path / "b.gguf", "q4_0")
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    with pytest.raises(MissingDependency, match=r"plait\[onnx\]"):
        quantize_dynamic_int8(tmp_path / "a.onnx", tmp_path / "b.onnx")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    files = _report().write(tmp_path / "r")
    assert "chart" not in files and "Install matplotlib" in files["html"].read_text()


def test_default_evaluation_text_is_the_persons_own_index(fake_models: Runtime, tmp_path: Path) -> None:
    from plait.compress.data import load_eval, load_train
    from plait.index.core import open_index

    source = source_of(fake_models.catalog.get("fake-embed"))
    with pytest.raises(InputError, match="give --eval DATA.*plait index add"):
        load_eval(source, None, (), fake_models.store)
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(12):
        (folder / f"{i}.txt").write_text(f"Note {i} is about topic {i}. It goes on about topic {i} at length.")
    open_index(fake_models).add([folder], collection="notes")
    data = load_eval(source, None, (), fake_models.store)
    assert data.kind == "embedder" and len(data.queries) == 12 and data.source == "documents of your index"
    assert data.queries[3].startswith("Note")
    train = load_train(source, None, (), fake_models.store)
    assert len(train.texts) >= 12 and train.source == "sentences of your index"
