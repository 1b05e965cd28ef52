"""Fuzzing the worker's input paths: decode, parameters, model ids, image URLs.

Each property: hostile input either works or raises the one domain error that maps to a clear
status (INVALID_ARGUMENT), with a bounded message; nothing else escapes (which would answer
INTERNAL or UNKNOWN).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet.v1 import inference_pb2
from services.common.errors import InvalidArgument, InvalidImage
from services.common.messages import MAX_MESSAGE_CHARS
from services.common.model_record import MODEL_ID_PATTERN, check_model_id
from services.common.model_spec import ModelSpec
from services.model_worker.converters import params_from_proto
from services.model_worker.processing.decode import ImageLimits, decode_bytes, decode_raw
from services.model_worker.processing.params import InferenceParams
from services.common.url_fetch import UrlFetcher
from tests.fuzz.strategies import class_names, examples, floats, hostile_bytes, hostile_urls

pytestmark = pytest.mark.fuzz
LIMITS = ImageLimits(max_pixels=4_000_000, max_side=4096)  # small, so hostile headers stay cheap to refuse
SPEC = ModelSpec.from_json({
    "task_type": "object-detection", "model_type": "yolov8", "class_names": ["circle", "rectangle", "triangle"],
    "outputs": ["output0"], "input": {"width": 64, "height": 64}, "weights": {"sha256": "0" * 64},
})


def bounded(error: Exception) -> None:
    assert len(error.message) <= MAX_MESSAGE_CHARS  # type: ignore[attr-defined]


@examples(400)
@given(hostile_bytes)
def test_decode_refuses_or_decodes(data: bytes) -> None:
    try:
        pixels = decode_bytes(data, LIMITS)
    except InvalidImage as exc:
        bounded(exc)
        return
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.flags.c_contiguous


@examples(150)
@given(st.binary(max_size=300), st.integers(-3, 5000), st.integers(-3, 5000), st.integers(-1, 6), st.booleans())
def test_raw_pixels_refuse_or_convert(data: bytes, width: int, height: int, channels: int, bgr: bool) -> None:
    try:
        pixels = decode_raw(data, width, height, channels, LIMITS, bgr=bgr)
    except InvalidImage as exc:
        bounded(exc)
        return
    assert pixels.shape == (height, width, 3)


@examples(300)
@given(floats, floats, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), class_names, st.booleans(),
       st.booleans())
def test_parameters_refuse_or_resolve(confidence: float, iou: float, max_detections: int, max_candidates: int,
                                      names: list[str], set_all: bool, agnostic: bool) -> None:
    proto = inference_pb2.InferenceParameters(class_filter=names, class_agnostic_nms=agnostic)
    if set_all:
        proto.confidence, proto.iou_threshold = confidence, iou
        proto.max_detections, proto.max_candidates = max_detections, max_candidates
    try:
        resolved = params_from_proto(proto).resolve(SPEC)
    except InvalidArgument as exc:
        bounded(exc)
        return
    assert 0.0 <= resolved.confidence <= 1.0 and 0.0 <= resolved.iou_threshold <= 1.0
    assert 1 <= resolved.max_detections and set(names) <= set(SPEC.class_names)


@examples(100)
@given(floats, st.integers(-(2**40), 2**40))
def test_parameter_objects_refuse_out_of_range_values(value: float, count: int) -> None:
    for kwargs in ({"confidence": value}, {"iou_threshold": value}, {"max_detections": count},
                   {"max_candidates": count}):
        try:
            InferenceParams(**kwargs)
        except InvalidArgument as exc:
            bounded(exc)


@examples(400)
@given(st.one_of(st.text(max_size=120), st.from_regex(MODEL_ID_PATTERN, fullmatch=True).map(lambda s: s + "\n"),
                 st.from_regex(MODEL_ID_PATTERN, fullmatch=True)))
def test_model_ids_are_accepted_only_whole(model_id: str) -> None:
    try:
        assert check_model_id(model_id) == model_id
    except InvalidArgument as exc:
        bounded(exc)
        assert MODEL_ID_PATTERN.fullmatch(model_id) is None
        return
    assert MODEL_ID_PATTERN.fullmatch(model_id) and "\n" not in model_id and len(model_id) <= 97


class NothingAllowed(UrlFetcher):
    """Vets every address as not allowed, so the fuzz never opens a connection."""

    def address_allowed(self, addr):  # noqa: ANN001, ANN201
        return False


async def _no_dns(host: str, port: int) -> list[str]:
    if host.endswith(".invalid"):
        raise OSError("does not resolve")
    return ["10.0.0.1"]


FETCHER = NothingAllowed(True, False, 2.0, 1 << 20, resolver=_no_dns)


@examples(400)
@given(hostile_urls)
def test_image_urls_are_refused_with_invalid_argument(url: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        asyncio.run(FETCHER.fetch(url))
    bounded(err.value)
