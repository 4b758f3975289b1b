"""Real packaged embedders: fidelity of the ONNX paths to PyTorch on real news sentences."""

import numpy as np
import pytest

from plait.models.base import Embedder
from plait.runtime import Runtime
from tests.corpora import lee_sentences

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return list(lee_sentences()[:1200])


@pytest.fixture(scope="module")
def torch_vectors(sentences: list[str]) -> np.ndarray:
    from plait.models.catalog import BUILTINS
    from plait.models.loading import load_model
    from plait.settings import load_settings

    model = load_model(BUILTINS["minilm"], load_settings())
    assert isinstance(model, Embedder)
    return model.embed_many(sentences)


@pytest.mark.parametrize("name", ["minilm-int8", "minilm-q8"])
def test_onnx_int8_matches_torch(runtime: Runtime, name: str, sentences: list[str],
                                 torch_vectors: np.ndarray) -> None:
    vectors = runtime.model(name, Embedder).embed_many(sentences)
    cosine = (vectors * torch_vectors).sum(axis=1)
    assert len(sentences) >= 1000
    assert cosine.mean() >= 0.99, f"{name}: mean cosine {cosine.mean():.4f}"


@pytest.mark.parametrize("name", ["minilm", "minilm-q8", "minilm-l3", "e5-small"])
def test_related_texts_are_closer(runtime: Runtime, name: str) -> None:
    model = runtime.model(name, Embedder)
    q = model.embed("How do I bake bread at home?", kind="query")
    docs = model.embed_many(["A simple recipe for homemade bread with flour, yeast and an oven.",
                             "The central bank raised interest rates by half a point."])
    assert docs.shape == (2, model.dimensions) == (2, 384)
    assert float(docs[0] @ q) > float(docs[1] @ q) + 0.1
