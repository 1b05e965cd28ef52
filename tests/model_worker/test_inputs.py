"""Typed inputs: a request is checked against what its model declares (INVALID_ARGUMENT naming the input)."""

from __future__ import annotations

import numpy as np
import pytest

from fleet.v1 import inference_pb2
from services.common.errors import InvalidArgument, InvalidImage
from services.common.model_spec import ModelSpec
from services.model_worker.converters import inputs_from_proto

PNG = b"\x89PNG\r\n\x1a\n"


def _spec(inputs: list[dict] | None = None) -> ModelSpec:
    data = {"task_type": "object-detection", "model_type": "yolov8", "class_names": ["a"],
            "input": {"width": 32, "height": 32}, "weights": {"sha256": "0" * 64}}
    if inputs is not None:
        data["inputs"] = inputs
    return ModelSpec.model_validate(data)


PROMPTED = _spec([{"name": "image", "kind": "image"}, {"name": "text", "kind": "texts", "required": False,
                                                        "max_items": 2},
                  {"name": "points", "kind": "points", "required": False},
                  {"name": "boxes", "kind": "boxes", "required": False},
                  {"name": "mask", "kind": "tensor", "required": False}])


def _request(**inputs: inference_pb2.InputValue) -> inference_pb2.InferRequest:
    return inference_pb2.InferRequest(model_id="m/1", image=inference_pb2.Image(encoded=PNG), inputs=inputs)


def test_an_image_only_model_refuses_any_other_input_by_name() -> None:
    with pytest.raises(InvalidArgument, match="input 'text' is not an input of model 'm/1', which takes: image"):
        inputs_from_proto(_request(text=inference_pb2.InputValue(texts=inference_pb2.Texts(values=["a cat"]))),
                          _spec(), "m/1")
    with pytest.raises(InvalidImage, match="no image"):
        inputs_from_proto(inference_pb2.InferRequest(model_id="m/1"), _spec(), "m/1")
    assert inputs_from_proto(_request(), _spec(), "m/1").image.encoded == PNG


def test_declared_inputs_arrive_typed_in_original_pixels() -> None:
    got = inputs_from_proto(_request(
        text=inference_pb2.InputValue(texts=inference_pb2.Texts(values=["a", "b"])),
        points=inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[
            inference_pb2.PointPrompt(x=3, y=4), inference_pb2.PointPrompt(x=5, y=6, negative=True)])),
        boxes=inference_pb2.InputValue(boxes=inference_pb2.BoxPrompts(boxes=[
            inference_pb2.BoxPrompt(x=10, y=20, width=4, height=6)])),
        mask=inference_pb2.InputValue(tensor=inference_pb2.Tensor(
            datatype="FP32", shape=[1, 2, 2], data=np.arange(4, dtype=np.float32).tobytes())),
    ), PROMPTED, "m/1")
    assert got.texts("text") == ("a", "b")
    assert got.points("points").xy.tolist() == [[3, 4], [5, 6]] and got.points("points").positive.tolist() == [True, False]
    assert got.boxes("boxes").xyxy.tolist() == [[8, 17, 12, 23]]
    assert got.tensor("mask").shape == (1, 2, 2) and got.image.encoded == PNG


@pytest.mark.parametrize(("value", "message"), [
    (inference_pb2.InputValue(texts=inference_pb2.Texts(values=["a", "b", "c"])), "'text' has 3 values; model 'm/1' takes at most 2"),
    (inference_pb2.InputValue(texts=inference_pb2.Texts()), "'text' is empty"),
    (inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[inference_pb2.PointPrompt()])), "is texts, not points"),
    (inference_pb2.InputValue(), "'text' carries no value"),
])
def test_wrong_inputs_name_the_input(value: inference_pb2.InputValue, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        inputs_from_proto(_request(text=value), PROMPTED, "m/1")


def test_bad_prompt_values_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="positive width and height"):
        inputs_from_proto(_request(boxes=inference_pb2.InputValue(boxes=inference_pb2.BoxPrompts(boxes=[
            inference_pb2.BoxPrompt(x=1, y=1, width=0, height=2)]))), PROMPTED, "m/1")
    with pytest.raises(InvalidArgument, match="needs 16 bytes, got 3"):
        inputs_from_proto(_request(mask=inference_pb2.InputValue(tensor=inference_pb2.Tensor(
            datatype="FP32", shape=[2, 2], data=b"abc"))), PROMPTED, "m/1")
    with pytest.raises(InvalidArgument, match="finite"):
        inputs_from_proto(_request(points=inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[
            inference_pb2.PointPrompt(x=float("nan"), y=1)]))), PROMPTED, "m/1")


def test_model_json_inputs_and_graphs_are_validated() -> None:
    with pytest.raises(ValueError, match="names must be unique"):
        _spec([{"name": "image", "kind": "image"}, {"name": "image", "kind": "texts"}])
    spec = ModelSpec.model_validate({
        "task_type": "object-detection", "model_type": "yolov8", "class_names": ["a"],
        "input": {"width": 32, "height": 32}, "weights": {"sha256": "1" * 64},
        "graphs": {"decoder": {"file": "decoder.onnx", "sha256": "2" * 64}},
        "assets": {"vocab": {"file": "vocab.txt", "sha256": "3" * 64}}})
    assert set(spec.files) == {"model", "decoder", "vocab"} and spec.sha256 != spec.weights.sha256
    with pytest.raises(ValueError, match="other than 'model'"):
        ModelSpec.model_validate({**spec.model_dump(), "graphs": {"model": {"file": "x.onnx", "sha256": "2" * 64}}})
