"""What a request's image is, and turning it into RGB pixels (off the event loop)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from services.common.errors import InvalidImage
from services.model_worker.processing.decode import Decoded, ImageLimits, Shrink, decode_raw, decode_scaled

Reserve = Callable[[int], None]  # called with the image's pixel count after its header is read, before decoding


@dataclass(frozen=True)
class RawPixels:
    data: bytes
    width: int
    height: int
    channels: int
    bgr: bool = False


@dataclass(frozen=True)
class ImageInput:
    """Exactly one of encoded bytes, a URL (fetched before decoding) or raw pixels."""

    encoded: bytes | None = None
    url: str | None = None
    raw: RawPixels | None = None

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.encoded, self.url, self.raw)) != 1:
            raise InvalidImage("the request must carry an image: encoded bytes, a URL or raw pixels")


def to_pixels(image: ImageInput, limits: ImageLimits, reserve: Reserve | None = None) -> np.ndarray:
    """RGB uint8 pixels of an encoded or raw image (a URL must have been fetched already)."""
    return to_decoded(image, limits, reserve).pixels


def to_decoded(image: ImageInput, limits: ImageLimits, reserve: Reserve | None = None,
               shrink: Shrink | None = None) -> Decoded:
    """As ``to_pixels``, with the full size; a JPEG may be decoded reduced (``decode_scaled``)."""
    if image.raw is not None:
        r = image.raw
        pixels = decode_raw(r.data, r.width, r.height, r.channels, limits, bgr=r.bgr, reserve=reserve)
        return Decoded(pixels, r.width, r.height)
    if image.encoded is None:
        raise InvalidImage("the image URL was not fetched")
    return decode_scaled(image.encoded, limits, reserve, shrink)
