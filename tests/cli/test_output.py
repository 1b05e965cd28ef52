"""The CLI's tables for every kind of result."""

from __future__ import annotations

import math

from fleet.cli.output import response_table
from fleet.v1 import inference_pb2


def box(name: str = "rectangle") -> inference_pb2.Detection:
    return inference_pb2.Detection(x=10, y=20, width=30, height=40, confidence=0.9, class_name=name)


def test_keypoint_table_lists_named_points() -> None:
    r = inference_pb2.InferResponse(model_id="m/1", keypoint_detection=inference_pb2.KeypointDetectionResult(
        instances=[inference_pb2.KeypointInstance(detection=box(), keypoints=[
            inference_pb2.Keypoint(x=1.25, y=2, confidence=0.5, name="corner-1"),
            inference_pb2.Keypoint(x=3, y=4, confidence=0.01, name="corner-2")])]))
    text = response_table(r)
    assert "1 instances" in text and "corner-1=(1.2,2.0,0.50)" in text and "corner-2=(3.0,4.0,0.01)" in text


def test_oriented_table_shows_the_angle_in_degrees() -> None:
    r = inference_pb2.InferResponse(oriented_detection=inference_pb2.OrientedDetectionResult(boxes=[
        inference_pb2.OrientedBox(x=5, y=6, width=7, height=3, angle=math.pi / 6, confidence=0.8,
                                  class_name="rectangle")]))
    text = response_table(r)
    assert "1 oriented boxes" in text and "30.0" in text and "rectangle" in text


def test_segmentation_and_classification_tables() -> None:
    seg = inference_pb2.InferResponse(instance_segmentation=inference_pb2.InstanceSegmentationResult(instances=[
        inference_pb2.SegmentedInstance(detection=box(), points=[inference_pb2.Point(x=1, y=1)] * 3,
                                        parts=[inference_pb2.Polygon(), inference_pb2.Polygon(hole=True)])]))
    assert "1 instances" in response_table(seg) and "outline points" in response_table(seg)
    cls = inference_pb2.InferResponse(classification=inference_pb2.ClassificationResult(
        top_class="circle", top_confidence=0.7, predictions=[inference_pb2.ClassPrediction(class_name="circle",
                                                                                          confidence=0.7)]))
    assert "top: circle (0.700)" in response_table(cls)
    assert "no result" in response_table(inference_pb2.InferResponse())
