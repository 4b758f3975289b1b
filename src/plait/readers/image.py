"""Images: decode a file or bytes with Pillow into an upright RGB picture, or say clearly why not."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from plait.errors import InputError, MissingDependency
from plait.readers.text import read_bytes

if TYPE_CHECKING:
    from PIL.Image import Image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".ico")
MAX_IMAGE_BYTES = 100 * 1024 * 1024


def open_image(source: str | Path | bytes, *, name: str | None = None) -> Image:
    """Decode an image fully (so a truncated file fails here, not later) and return it as RGB.

    EXIF orientation is applied (phone photos are stored sideways) and transparency is composited on
    white, since a classifier sees transparent pixels as whatever colour they happen to hold.
    """
    try:
        from PIL import Image as PILImage
        from PIL import ImageOps, UnidentifiedImageError
    except ImportError as exc:
        raise MissingDependency("reading images", extra="vision", package="Pillow") from exc

    label = name or (f"{len(source)} bytes of image data" if isinstance(source, bytes) else str(source))
    if isinstance(source, bytes):
        data = source
    else:
        data = read_bytes(source, limit=MAX_IMAGE_BYTES, what="images", give="image files")
    if not data:
        raise InputError(f"{label} is empty, not an image")
    try:
        with PILImage.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened) or opened
            return _to_rgb(image)
    except UnidentifiedImageError as exc:
        raise InputError(f"{label} is not an image Pillow can read (JPEG, PNG, GIF, BMP, WebP, TIFF…)") from exc
    except PILImage.DecompressionBombError as exc:
        raise InputError(f"{label} has too many pixels to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # Truncated or corrupt data: Pillow raises OSError ("image file is truncated") or SyntaxError.
        raise InputError(f"{label} is a damaged or truncated image ({exc})") from exc


def _to_rgb(image: Image) -> Image:
    from PIL import Image as PILImage

    if image.mode == "RGB":
        return image.copy()
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")
