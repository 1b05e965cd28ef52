"""Image decoding with limits checked before the pixels are decoded.

Every image leaves here as a contiguous ``H x W x 3`` uint8 array in RGB order,
whatever it arrived as (encoded bytes in any supported format, or raw pixels).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from services.common.errors import InvalidImage

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "WEBP"})

# Register Pillow's format plugins now, not on the first request that needs them. Pillow's own
# bomb guard (Image.MAX_IMAGE_PIXELS) stays as it is for the whole process: headers are read
# below without going through Image.open, so the declared size is checked against ImageLimits
# (and reported) instead of being hidden by Pillow's DecompressionBombError.
Image.init()


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 40_000_000
    max_side: int = 16_384


def _identify(prefix: bytes) -> str | None:
    """The format whose signature ``prefix`` carries (by Pillow's prefix tests only, no parsing)."""
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        try:
            if accept is not None and accept(prefix):
                return fmt
        except Exception:  # noqa: BLE001 - some prefix tests assume a longer prefix
            continue
    return None


def _unrecognised() -> InvalidImage:
    return InvalidImage(
        f"the image bytes are not a recognisable image; supported formats are {sorted(SUPPORTED_FORMATS)}"
    )


def probe(data: bytes, limits: ImageLimits) -> tuple[str, int, int]:
    """Read only the header: return (format, width, height) or raise InvalidImage.

    Only the parsers of the supported formats ever run on the bytes: other formats are named
    from their signature and refused.
    """
    if not data:
        raise InvalidImage("the image is empty (0 bytes)")
    fmt = _identify(data[:16])
    if fmt is None:
        raise _unrecognised()
    if fmt not in SUPPORTED_FORMATS:
        raise InvalidImage(f"image format {fmt} is not supported; send one of {sorted(SUPPORTED_FORMATS)}")
    try:
        # The plugin's own constructor reads the header, as Image.open does, minus the process-wide bomb check.
        with Image.OPEN[fmt][0](io.BytesIO(data), None) as img:
            fmt, (width, height) = (img.format or fmt), img.size
    except Exception:  # noqa: BLE001 - any parser failure on hostile bytes means "not a valid image"
        raise _unrecognised() from None
    if fmt not in SUPPORTED_FORMATS:  # e.g. a JPEG container holding MPO
        raise InvalidImage(f"image format {fmt} is not supported; send one of {sorted(SUPPORTED_FORMATS)}")
    check_dimensions(width, height, limits)
    return fmt, width, height


def check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the image has no pixels ({width}x{height})")
    if width > limits.max_side or height > limits.max_side:
        raise InvalidImage(
            f"the image is {width}x{height}; each side must be at most {limits.max_side} pixels"
        )
    if width * height > limits.max_pixels:
        raise InvalidImage(
            f"the image is {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels} pixels; resize it before sending"
        )


#: (width, height) of the full image -> 1, 2, 4 or 8: by how much a JPEG may be decoded smaller.
Shrink = Callable[[int, int], int]

# libjpeg scales while it decodes (fewer IDCT outputs, less colour conversion): sizes are rounded up.
_REDUCED = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


@dataclass(frozen=True)
class Decoded:
    """RGB uint8 pixels, and the full image's size they stand for (larger when decoded reduced)."""

    pixels: np.ndarray
    width: int
    height: int


def decode_bytes(data: bytes, limits: ImageLimits, reserve: Callable[[int], None] | None = None) -> np.ndarray:
    """Decode an encoded image (after checking its header, and ``reserve``-ing its pixels) into RGB uint8."""
    return decode_scaled(data, limits, reserve).pixels


def decode_scaled(data: bytes, limits: ImageLimits, reserve: Callable[[int], None] | None = None,
                  shrink: Shrink | None = None) -> Decoded:
    """As ``decode_bytes``; a JPEG is decoded at 1/2, 1/4 or 1/8 of its size when ``shrink`` allows it
    for the image's size (in either orientation, as EXIF may rotate it)."""
    fmt, width, height = probe(data, limits)
    if reserve is not None:
        reserve(width * height)
    factor = min(shrink(width, height), shrink(height, width)) if shrink is not None and fmt == "JPEG" else 1
    buf = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buf, _REDUCED[factor])
    if bgr is None or bgr.size == 0:
        raise InvalidImage(f"the {fmt} image could not be decoded: the data is corrupt or truncated")
    rows, cols = -(-height // factor), -(-width // factor)
    if bgr.shape[:2] == (rows, cols):
        full = (width, height)
    elif bgr.shape[:2] == (cols, rows):  # turned by its EXIF orientation
        full = (height, width)
    else:  # the decoder disagrees with the header: treat as corrupt rather than guess
        raise InvalidImage(f"the {fmt} image is corrupt: its header and pixel data disagree")
    return Decoded(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr), *full)  # in place: one buffer, not two


def decode_raw(
    data: bytes, width: int, height: int, channels: int, limits: ImageLimits, *, bgr: bool = False,
    reserve: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Interpret raw interleaved uint8 pixels (1, 3 or 4 channels) as an RGB image."""
    check_dimensions(width, height, limits)
    if channels not in (1, 3, 4):
        raise InvalidImage(f"raw images must have 1, 3 or 4 channels, got {channels}")
    expected = width * height * channels
    if len(data) != expected:
        raise InvalidImage(
            f"raw image data is {len(data)} bytes but {width}x{height}x{channels} needs {expected} bytes"
        )
    if reserve is not None:
        reserve(width * height)
    pixels = np.frombuffer(data, dtype=np.uint8).reshape(height, width, channels)
    if channels == 1:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB if bgr else cv2.COLOR_RGBA2RGB)
    if bgr:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    return np.ascontiguousarray(pixels)
