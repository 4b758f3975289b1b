"""The image-classification interface: backends implement ``classify_batch``; the base class batches.

Images arrive decoded (Pillow, RGB) so every backend gets the same, already-checked input; decoding and
its errors live in :mod:`plait.readers.image`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from plait.models.base import Model

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image


class ImageClassifier(Model):
    """Maps RGB images to probabilities over a fixed list of class names."""

    ability = "classify images"  # for "model X cannot …" errors

    labels: tuple[str, ...]
    batch_size: int = 16

    @abstractmethod
    def classify_batch(self, images: Sequence[Image]) -> np.ndarray:
        """One batch: float32 class probabilities, shape (len(images), len(labels)), rows summing to 1."""

    def classify_many(self, images: Sequence[Image], *, batch_size: int | None = None,
                      progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Any number of images, batched; ``progress`` gets the number finished after each batch."""
        import numpy as np

        size = batch_size or self.batch_size
        out = np.zeros((len(images), len(self.labels)), dtype=np.float32)
        for start in range(0, len(images), size):
            batch = images[start:start + size]
            out[start:start + len(batch)] = self.classify_batch(batch)
            if progress:
                progress(len(batch))
        return out
