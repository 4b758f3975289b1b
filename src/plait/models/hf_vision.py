"""Image classifiers from the transformers library (ViT, ConvNeXt, EfficientNet, MobileNet… on the hub).

For a person who has one of the usual hub models, in the hub cache or as a folder:

    plait models add vit hf:google/vit-base-patch16-224 --backend transformers-image -c see
    plait see photo.jpg -m vit

Class names come from the model's ``config.id2label``; preprocessing from its own image processor (the
slow, PIL-based one: the fast ones need torchvision, which would replace plait's CPU torch build).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from plait.errors import BackendError, MissingDependency, ModelFileError
from plait.models.hf import _hub_error, _location, _prepare
from plait.models.spec import ModelSpec
from plait.models.vision import ImageClassifier
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image


class TransformersImageClassifier(ImageClassifier):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        try:
            from transformers import AutoImageProcessor, AutoModelForImageClassification
        except ImportError as exc:
            raise MissingDependency("transformers image classifiers", extra="hf", package="transformers") from exc
        _prepare(settings)
        self.spec = spec
        where = _location(spec)
        try:
            self.processor = AutoImageProcessor.from_pretrained(where, use_fast=False)
            self.net = AutoModelForImageClassification.from_pretrained(where).eval()
        except (OSError, ValueError) as exc:
            if spec.is_hub:
                raise _hub_error(spec, exc) from exc
            raise ModelFileError(where, f"is not an image-classification model ({str(exc).splitlines()[0][:160]})",
                                 "give a folder saved with save_pretrained, with config.json and "
                                 "preprocessor_config.json") from exc
        id2label = self.net.config.id2label
        self.labels = tuple(str(id2label[i]) for i in range(len(id2label)))

    def classify_batch(self, images: Sequence[Image]) -> np.ndarray:
        import numpy as np
        import torch

        try:
            inputs = self.processor(images=list(images), return_tensors="pt")
            with torch.inference_mode():
                logits = self.net(**inputs).logits
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"{self.spec.name} failed on a batch of {len(images)} images: {exc}") from exc
        probs: np.ndarray = logits.softmax(dim=-1).float().numpy().astype(np.float32)
        return probs


def load(spec: ModelSpec, settings: Settings) -> TransformersImageClassifier:
    return TransformersImageClassifier(spec, settings)
