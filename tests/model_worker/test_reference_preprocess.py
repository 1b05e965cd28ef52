"""The preprocessing of the reference architectures against hand-computed expectations and PIL itself:
torchvision's Resize(shortest) + CenterCrop (OpenCLIP), PIL's antialiased filters, SAM's padding after
normalisation. The torch models themselves: tests/packaging/test_reference_equality.py."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from services.common.model_spec import InputSpec
from services.model_worker.processing.preprocess import decode_reduction, preprocess, resize_to_input

RNG = np.random.default_rng(0)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
SAM_MEAN, SAM_STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def clip_spec() -> InputSpec:
    return InputSpec(width=224, height=224, resize_mode="resize-center-crop", interpolation="pil-bicubic",
                     mean=CLIP_MEAN, std=CLIP_STD)


def sam_spec(**kw: object) -> InputSpec:
    return InputSpec(**{"width": 1024, "height": 1024, "resize_mode": "letterbox", "anchor": "top-left",
                        "interpolation": "pil-bilinear", "scale": 1.0, "mean": SAM_MEAN, "std": SAM_STD,
                        "pad_value": 0, "pad_normalized": True, **kw})


@pytest.mark.parametrize("width,height,resized,offset", [
    (300, 200, (336, 224), (56, 0)),  # 224 * 300 / 200 = 336; (336 - 224) / 2 = 56
    (181, 263, (224, 325), (0, 50)),  # int(224 * 263 / 181) = int(325.48) = 325; round(50.5) = 50 (half to even)
    (224, 224, (224, 224), (0, 0)),
])
def test_resize_center_crop_is_torchvision_resize_then_crop(width: int, height: int, resized: tuple[int, int],
                                                             offset: tuple[int, int]) -> None:
    image = RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)
    out, t = resize_to_input(image, clip_spec())
    left, top = offset
    expected = np.asarray(Image.fromarray(image).resize(resized, Image.Resampling.BICUBIC))
    expected = expected[top:top + 224, left:left + 224]
    assert out.shape == (224, 224, 3) and np.array_equal(out, expected)
    assert (t.gain_x, t.gain_y, t.pad_x, t.pad_y) == (resized[0] / width, resized[1] / height, -left, -top)
    # The input's top-left corner is the crop's corner in the original image.
    corner = [[left * width / resized[0], top * height / resized[1]]]
    assert np.allclose(t.points_to_original(np.array([[0.0, 0.0]])), corner)


def test_resize_center_crop_needs_a_square_input() -> None:
    with pytest.raises(ValidationError, match="square"):
        InputSpec(width=224, height=160, resize_mode="resize-center-crop")


def test_sam_letterbox_pads_with_zeros_after_normalisation() -> None:
    image = RNG.integers(0, 256, (427, 640, 3), dtype=np.uint8)
    tensor, t = preprocess(image, sam_spec())
    new_h = 683  # round(427 * 1024 / 640) = round(683.2)
    placed = np.asarray(Image.fromarray(image).resize((1024, new_h), Image.Resampling.BILINEAR)).astype(np.float32)
    mean, std = np.array(SAM_MEAN, np.float32)[:, None, None], np.array(SAM_STD, np.float32)[:, None, None]
    want = (placed.transpose(2, 0, 1) - mean) / std
    assert tensor.shape == (3, 1024, 1024)
    assert np.allclose(tensor[:, :new_h], want, atol=1e-6)
    assert not tensor[:, new_h:].any()  # padding: exactly 0 in every channel, not pad_value normalised
    assert t.mask_window == (0, 0, 1024, new_h)
    # Without pad_normalized the padding is pad_value, normalised like the pixels.
    plain, _ = preprocess(image, sam_spec(pad_normalized=False))
    assert np.allclose(plain[:, new_h:], (-np.array(SAM_MEAN) / np.array(SAM_STD))[:, None, None], atol=1e-6)


def test_pil_filters_decode_the_whole_image() -> None:
    """A reduced decode would change what PIL resamples: PIL filters always get the full image."""
    assert decode_reduction(4096, 3072, sam_spec()) == 1
    assert decode_reduction(4096, 3072, sam_spec(interpolation="linear")) == 4  # 4096 // 4 >= 1024, 3072 // 4 >= 768
    assert decode_reduction(4096, 3072, clip_spec()) == 1
