"""see: what is in a picture. Image classification, top-k classes with probabilities, batches of files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from plait.errors import InputError
from plait.models.vision import ImageClassifier
from plait.runtime import Runtime, get_runtime
from plait.tasks.registry import Batch, Task, TaskRequest, decode_base64, file_content, one_file, run_decoded

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

DEFAULT_MODEL = "efficientnet-lite0"


@dataclass(frozen=True)
class ImageLabel:
    label: str
    score: float  # the model's probability for this class
    index: int  # class index in the model's label list


@dataclass(frozen=True)
class SeeResult:
    source: str
    labels: tuple[ImageLabel, ...] = ()
    error: str | None = None  # set instead of labels when this input could not be read
    model: str = ""

    @property
    def top(self) -> ImageLabel | None:
        return self.labels[0] if self.labels else None


def classifier(model: str | ImageClassifier | None = None, runtime: Runtime | None = None) -> ImageClassifier:
    if isinstance(model, ImageClassifier):
        return model
    rt = runtime or get_runtime()
    return rt.model(model or DEFAULT_MODEL, ImageClassifier)


def see(image: str | Path | bytes | Image, *, k: int = 5, model: str | ImageClassifier | None = None,
        runtime: Runtime | None = None) -> SeeResult:
    """The ``k`` most likely classes of one image (a path, encoded bytes, or a Pillow image)."""
    return see_many([image], k=k, model=model, runtime=runtime)[0]


def see_many(images: Sequence[str | Path | bytes | Image], *, k: int = 5,
             model: str | ImageClassifier | None = None, runtime: Runtime | None = None,
             errors: Literal["raise", "report"] = "raise",
             progress: Callable[[int], None] | None = None) -> list[SeeResult]:
    """Classify many images in batches, in input order.

    With ``errors="raise"`` an unreadable input raises :class:`InputError`; with ``"report"`` its result
    carries the message in ``error`` and the others are still classified (what a batch over a folder
    wants). Images are decoded one batch at a time, so a long list never sits in memory at once.
    """
    if not images:
        raise InputError("no images given")
    m = classifier(model, runtime)
    if k < 1:
        raise InputError(f"k must be at least 1, not {k}")
    k = min(k, len(m.labels))  # asking for more classes than the model has means all of them
    results: list[SeeResult] = []
    for start in range(0, len(images), m.batch_size):
        chunk = images[start:start + m.batch_size]
        decoded: list[Image] = []
        slots: list[SeeResult | None] = []
        for item in chunk:
            name = _name(item)
            try:
                decoded.append(_decode(item))
                slots.append(None)
            except InputError as exc:
                if errors == "raise":
                    raise
                slots.append(SeeResult(name, error=str(exc)))
        probs = m.classify_batch(decoded) if decoded else None
        row = 0
        for item, slot in zip(chunk, slots, strict=True):
            if slot is None:
                assert probs is not None
                slot = SeeResult(_name(item), _top_k(probs[row], m.labels, k), model=m.spec.name)
                row += 1
            results.append(slot)
        if progress:
            progress(len(chunk))
    return results


def _decode(item: str | Path | bytes | Image) -> Image:
    from plait.readers.image import open_image

    if isinstance(item, str | Path | bytes):
        return open_image(item)
    if hasattr(item, "convert") and hasattr(item, "size"):  # a Pillow image already in memory
        return item if item.mode == "RGB" else item.convert("RGB")
    raise InputError(f"cannot read an image from a {type(item).__name__}; give a path, bytes or a Pillow image")


def _name(item: object) -> str:
    if isinstance(item, str | Path):
        return str(item)
    if isinstance(item, bytes):
        return f"<{len(item)} bytes>"
    return f"<{type(item).__name__}>"


def _top_k(probs: np.ndarray, labels: Sequence[str], k: int) -> tuple[ImageLabel, ...]:
    import numpy as np

    best = np.argpartition(-probs, k - 1)[:k] if k < len(probs) else np.arange(len(probs))
    best = best[np.argsort(-probs[best], kind="stable")]
    return tuple(ImageLabel(labels[i], round(float(probs[i]), 6), int(i)) for i in best)


# --- the task -----------------------------------------------------------------------------------------

class SeeRequest(TaskRequest):
    image: str = file_content("the image")
    k: int = Field(5, ge=1, le=50, description="how many classes")
    model: str | None = Field(None, description=f"an image classifier (default: {DEFAULT_MODEL})")


def _runner(request: SeeRequest, runtime: Runtime) -> Callable[[list[str]], list[SeeResult]]:
    def run(images: list[str]) -> list[SeeResult]:
        # Decoded per item, so one request's bad base64 fails that request only, not the batch. The model
        # is looked up here, in the worker, on each batch: a cold load never blocks the server's event loop,
        # and a model the pool has unloaded is not kept alive by this batch function.
        return run_decoded(images, "image", lambda error: SeeResult("<image>", error=error),
                           lambda good: see_many(good, k=request.k, model=request.model, runtime=runtime,
                                                 errors="report"))
    return run


TASK = Task(
    name="see", summary="What is in a picture: the most likely classes", request=SeeRequest, result=SeeResult,
    input="image", file_input=True,
    run=lambda request, ctx: see(decode_base64(request.image, "image"), k=request.k, model=request.model,
                                 runtime=ctx.runtime),
    # Images of many requests (or of a folder, from the CLI) go through the model in batches.
    batch=Batch(items=lambda request: [request.image], key=lambda request: f"{request.model}|{request.k}",
                runner=_runner, answer=one_file),
    models=lambda request, settings: [request.model or DEFAULT_MODEL],
)
