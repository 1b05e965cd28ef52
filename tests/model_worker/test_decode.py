"""Decoding limits without touching Pillow's process-wide bomb guard."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import services.model_worker.server  # noqa: F401 - everything the worker imports at start-up
from services.common.errors import InvalidImage
from services.model_worker.processing.decode import ImageLimits, decode_bytes, probe
from tests.model_worker.test_service import PNG, gif, png_header_only


def test_pillows_bomb_guard_is_left_on_for_the_whole_process() -> None:
    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS > 0
    with pytest.raises(Image.DecompressionBombError):  # other Pillow users in the process stay protected
        Image.open(io.BytesIO(png_header_only(15_000, 15_000)))


def test_declared_sizes_are_read_past_pillows_guard_and_checked_against_our_limits() -> None:
    # 225 megapixels: Image.open would refuse it before saying how big it is.
    assert probe(png_header_only(15_000, 15_000), ImageLimits(300_000_000, 20_000)) == ("PNG", 15_000, 15_000)
    with pytest.raises(InvalidImage, match="15000x15000 = 225000000 pixels, over the limit"):
        probe(png_header_only(15_000, 15_000), ImageLimits())


def test_only_supported_formats_are_parsed_and_others_named() -> None:
    with pytest.raises(InvalidImage, match="GIF is not supported"):
        probe(gif(), ImageLimits())
    with pytest.raises(InvalidImage, match="not a recognisable image"):
        probe(b"\x89PNG\r\n\x1a\n" + b"\0" * 40, ImageLimits())
    assert decode_bytes(PNG, ImageLimits()).shape == (120, 200, 3)


def test_the_pixel_count_is_reserved_after_the_header_and_before_decoding() -> None:
    seen: list[int] = []

    def reserve(pixels: int) -> None:
        seen.append(pixels)
        raise RuntimeError("stop before decoding")

    with pytest.raises(RuntimeError):
        decode_bytes(PNG, ImageLimits(), reserve)
    assert seen == [200 * 120]
