"""Protobuf conversion of results: the hand-encoded polygon outlines equal message-built ones."""

from __future__ import annotations

import numpy as np
import pytest

from fleet.v1 import inference_pb2
from services.tasks.segmentation import points_wire


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_points_wire_equals_building_point_messages(dtype) -> None:
    rng = np.random.default_rng(7)
    polygon = (rng.random((57, 2)) * 900).astype(dtype)
    polygon[3] = (0, 12)  # a zero coordinate (omitted by proto3 serialization) still parses back
    fast = inference_pb2.SegmentedInstance(detection=inference_pb2.Detection(class_name="circle"))
    fast.MergeFromString(points_wire(polygon))
    slow = inference_pb2.SegmentedInstance(detection=inference_pb2.Detection(class_name="circle"))
    slow.points.extend(inference_pb2.Point(x=float(x), y=float(y)) for x, y in polygon.tolist())
    assert fast == slow
    assert fast.detection.class_name == "circle"
    got = np.array([(p.x, p.y) for p in fast.points], np.float32)
    assert np.array_equal(got, polygon.astype(np.float32))
    reparsed = inference_pb2.SegmentedInstance.FromString(fast.SerializeToString())
    assert reparsed == slow


def test_empty_outline_adds_no_points() -> None:
    inst = inference_pb2.SegmentedInstance()
    inst.MergeFromString(points_wire(np.zeros((0, 2), np.float32)))
    assert len(inst.points) == 0
