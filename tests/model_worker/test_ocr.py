"""The OCR pipeline with the committed PP-OCRv4 package (real ONNX models, rendered pages).

OpenCV's Hershey fonts space words narrowly and PP-OCRv4 then often drops the space (rapidocr's own
pipeline does the same), so the pages draw each word with a gap of 0.6 x the text height; at
FONT_HERSHEY_SIMPLEX scale 1.5 and 2.0, thickness 2, every line below reads exactly.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnxruntime as ort

from services.common.model_spec import ModelSpec
import pytest

from services.demo.package import PACKAGES_DIR
from services.model_worker.artifacts import sha256_file
from services.model_worker.processing.ocr import load_dictionary, read_text

PACKAGE = PACKAGES_DIR / "pp-ocr"
LINES = ["Hello World 2026", "Receipt 4711: total 123.45 EUR", "The quick brown fox jumps",
         "Order #58, due 2026-12-06.", "Call 555-0199 today!"]
FONT = cv2.FONT_HERSHEY_SIMPLEX


@pytest.fixture(scope="module")
def models() -> dict[str, ort.InferenceSession]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return {name: ort.InferenceSession(str(PACKAGE / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])
            for name in ("det", "cls", "rec")}


def _call(session: ort.InferenceSession):
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


def _read(models: dict[str, ort.InferenceSession], image: np.ndarray, use_cls: bool = True):
    classes = load_dictionary(models["rec"].get_modelmeta().custom_metadata_map["character"])
    cls = _call(models["cls"]) if use_cls else None
    return read_text(image, _call(models["det"]), _call(models["rec"]), classes, cls)


def _page(lines: list[str], scale: float, width: int | None = None) -> np.ndarray:
    step = int(45 * scale) + 10
    image = np.full((40 + len(lines) * step, width or int(700 * scale) + 60, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        x, y = 20, 20 + int(30 * scale) + i * step
        for word in line.split(" "):
            cv2.putText(image, word, (x, y), FONT, scale, (0, 0, 0), 2, cv2.LINE_AA)
            (w, h), _ = cv2.getTextSize(word, FONT, scale, 2)
            x += w + int(0.6 * h)
    return image


def test_package_files_match_model_json() -> None:
    spec = ModelSpec.from_package(PACKAGE)  # the fleet's format: det is the first graph, cls and rec further ones
    assert (spec.task_type, spec.weights.file, set(spec.graphs)) == ("ocr", "det.onnx", {"cls", "rec"})
    for weights in spec.files.values():
        assert sha256_file(PACKAGE / weights.file) == weights.sha256
    character = ort.InferenceSession(str(PACKAGE / "rec.onnx"), providers=["CPUExecutionProvider"])
    classes = load_dictionary(character.get_modelmeta().custom_metadata_map["character"])
    assert len(classes) == spec.provenance["dictionary"]["characters"] + 2
    assert character.get_outputs()[0].shape[-1] == len(classes)


@pytest.mark.parametrize("scale", [1.5, 2.0])
def test_reads_rendered_lines_exactly(models: dict[str, ort.InferenceSession], scale: float) -> None:
    result = _read(models, _page(LINES, scale))
    assert result.text == "\n".join(LINES)
    assert [line.text for line in result.lines] == LINES
    for line, row in zip(result.lines, range(len(LINES))):
        assert line.confidence > 0.8
        top, bottom = line.quad[:, 1].min(), line.quad[:, 1].max()
        baseline = 20 + int(30 * scale) + row * (int(45 * scale) + 10)
        assert top < baseline < bottom + 5  # the quad covers its own line


def test_upside_down_line_is_turned_by_the_classifier(models: dict[str, ort.InferenceSession]) -> None:
    # One word: a whole upside-down page would also list a row's boxes right to left.
    page = cv2.rotate(_page(["Receipt#4711-2026"], 2.0), cv2.ROTATE_180)
    assert _read(models, page).text == "Receipt#4711-2026"
    assert _read(models, page, use_cls=False).text != "Receipt#4711-2026"


def test_blank_page_reads_nothing(models: dict[str, ort.InferenceSession]) -> None:
    result = _read(models, np.full((200, 300, 3), 255, np.uint8))
    assert result.lines == () and result.text == ""
