"""The OCR pipeline's steps on hand-made arrays: detection geometry, CTC decoding, reading order."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from services.model_worker.processing.ocr import (
    DetParams,
    TextLine,
    crop_quad,
    ctc_decode,
    det_boxes,
    det_preprocess,
    load_dictionary,
    order_quad,
    page_result,
    rec_preprocess,
)


def test_det_preprocess_rounds_to_multiples_of_32_within_the_limit() -> None:
    det = det_preprocess(np.zeros((500, 2000, 3), np.uint8), DetParams(limit_side_len=960))
    assert det.tensor.shape == (3, 256, 960)
    assert det.ratio_w == pytest.approx(960 / 2000) and det.ratio_h == pytest.approx(256 / 500)
    small = det_preprocess(np.zeros((10, 50, 3), np.uint8))
    assert small.tensor.shape == (3, 32, 64)  # never under 32, not scaled up with limit_type "max"


def test_det_boxes_expand_a_text_blob_and_map_it_back() -> None:
    det = det_preprocess(np.zeros((320, 640, 3), np.uint8))  # ratio 1
    prob = np.zeros((320, 640), np.float32)
    prob[100:120, 50:250] = 0.9  # a 200 x 20 text region
    quads, scores = det_boxes(prob[None, None], det)
    assert len(quads) == 1 and scores[0] == pytest.approx(0.9, abs=0.05)
    # unclip: area * 1.5 / perimeter = 200*20*1.5/440 ~ 13.6 px on every side (the 2x2 dilation adds ~1)
    x0, y0 = quads[0].min(axis=0)
    x1, y1 = quads[0].max(axis=0)
    assert 34 <= x0 <= 38 and 85 <= y0 <= 88 and 263 <= x1 <= 266 and 133 <= y1 <= 136


def test_det_boxes_drop_faint_and_tiny_regions() -> None:
    det = det_preprocess(np.zeros((320, 320, 3), np.uint8))
    prob = np.zeros((320, 320), np.float32)
    prob[10:30, 10:200] = 0.4  # above the pixel threshold, below the box threshold
    prob[100:102, 100:103] = 0.9  # too small
    quads, _ = det_boxes(prob, det)
    assert len(quads) == 0


def test_order_quad_starts_top_left_clockwise() -> None:
    corners = np.array([[10, 50], [100, 10], [0, 0], [110, 60]], np.float32)
    assert order_quad(corners).tolist() == [[0, 0], [100, 10], [110, 60], [10, 50]]


def test_crop_quad_straightens_a_rotated_region_and_turns_tall_ones() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    quad = np.array([[50, 40], [150, 40], [150, 70], [50, 70]], np.float32)
    image[40:70, 50:150] = 255
    crop = crop_quad(image, quad)
    assert crop.shape == (30, 100, 3) and crop.mean() > 250
    tall = crop_quad(image, np.array([[50, 20], [80, 20], [80, 120], [50, 120]], np.float32))
    assert tall.shape[:2] == (30, 100)  # 30 x 100 upright region turned 90 degrees


def test_rec_preprocess_width_follows_the_widest_crop() -> None:
    batch = rec_preprocess([np.zeros((20, 100, 3), np.uint8), np.full((10, 200, 3), 255, np.uint8)])
    assert batch.shape == (2, 3, 48, 960)  # 48 x (200 / 10)
    assert batch[0, :, :, 240:].max() == 0.0  # padded after its own 48 x 240
    assert batch[1].min() == pytest.approx(1.0)  # white is +1


def test_ctc_decode_merges_repeats_and_drops_blanks() -> None:
    classes = load_dictionary("a\nb\nc")
    assert classes == ["<blank>", "a", "b", "c", " "]
    steps = [1, 1, 0, 1, 2, 2, 4, 3, 0]  # a a - a b b _ c -  ->  "aab c"
    probs = np.full((1, len(steps), len(classes)), 0.01, np.float32)
    probs[0, np.arange(len(steps)), steps] = 0.9
    probs[0, 1, 1] = 0.7  # a merged repeat: only the first step's probability counts
    text, confidence = ctc_decode(probs, classes)[0]
    assert text == "aab c"
    assert confidence == pytest.approx(0.9)
    with pytest.raises(ValueError, match="classes"):
        ctc_decode(probs[..., :4], classes)


def _line(text: str, x: float, y: float, w: float = 80, h: float = 20) -> TextLine:
    quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
    return TextLine(text, 0.9, quad, 0.9)


def test_page_text_reads_rows_top_to_bottom_and_left_to_right() -> None:
    lines = [_line("world", 200, 12), _line("third", 10, 100), _line("hello", 10, 10), _line("second", 10, 50),
             _line("line", 150, 53)]
    result = page_result(lines)
    assert result.text == "hello world\nsecond line\nthird"
    assert [line.text for line in result.lines] == ["hello", "world", "second", "line", "third"]
    assert page_result([]).text == ""
