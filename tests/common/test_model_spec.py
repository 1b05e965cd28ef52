"""model.json validation: unknown keys, the new options, keypoints, names defaulting from the ONNX file;
the descriptor carries every field across the wire."""

from __future__ import annotations

import pytest

from services.common import descriptors
from services.common.errors import ModelPackageError
from services.common.model_record import ModelRecord
from services.common.model_spec import ModelSpec

BASE = {"task_type": "object-detection", "model_type": "yolov8", "class_names": ["a", "b"],
        "input": {"width": 64, "height": 64}, "weights": {"sha256": "0" * 64}}


def spec(**changes: object) -> ModelSpec:
    return ModelSpec.from_json({**BASE, **changes})


@pytest.mark.parametrize("document,key", [
    ({**BASE, "defualts": {}}, "defualts"),
    ({**BASE, "input": {"width": 64, "height": 64, "resize": "stretch"}}, "input.resize"),
    ({**BASE, "weights": {"sha256": "0" * 64, "sha": "x"}}, "weights.sha"),
])
def test_unknown_keys_are_rejected_by_name(document: dict, key: str) -> None:
    with pytest.raises(ModelPackageError, match=rf"{key}: unknown key"):
        ModelSpec.from_json(document)


def test_names_default_from_the_onnx_file_and_new_options_parse() -> None:
    s = spec()
    assert s.input.name is None and s.outputs == ()
    s = spec(input={"width": 64, "height": 64, "resize_mode": "center-crop", "interpolation": "lanczos",
                    "anchor": "top-left"}, defaults={"class_agnostic_nms": True, "top_k": 5})
    assert (s.input.resize_mode.value, s.input.interpolation.value, s.input.anchor.value) == (
        "center-crop", "lanczos", "top-left")
    assert s.defaults.class_agnostic_nms and s.defaults.top_k == 5


def test_keypoints_are_required_for_keypoint_models_only() -> None:
    pose = {"task_type": "keypoint-detection", "model_type": "yolov8-pose"}
    with pytest.raises(ModelPackageError, match="keypoints"):
        spec(**pose)
    with pytest.raises(ModelPackageError, match="keypoints"):
        spec(keypoints={"names": ["x"]})
    with pytest.raises(ModelPackageError, match="outside 0..1"):
        spec(**pose, keypoints={"names": ["x", "y"], "skeleton": [[0, 2]]})
    assert spec(**pose, keypoints={"names": ["x", "y"], "skeleton": [[0, 1]], "dims": 2}).keypoints.dims == 2


def test_model_type_must_serve_the_task_and_output_count_must_fit() -> None:
    with pytest.raises(ModelPackageError, match="serves oriented-detection"):
        spec(model_type="yolov8-obb")
    with pytest.raises(ModelPackageError, match="needs 2 output"):
        spec(task_type="instance-segmentation", model_type="yolo-e2e-seg", outputs=["output0"])


@pytest.mark.parametrize("changes", [
    {},
    {"task_type": "keypoint-detection", "model_type": "yolo-e2e-pose",
     "keypoints": {"names": ["p", "q", "r"], "skeleton": [[0, 1], [1, 2]], "dims": 3}},
    {"task_type": "oriented-detection", "model_type": "yolov8-obb", "outputs": ["out"],
     "input": {"name": "x", "width": 96, "height": 64, "resize_mode": "stretch", "interpolation": "area",
               "anchor": "top-left"}},
    {"task_type": "classification", "model_type": "yolov8-cls", "defaults": {"top_k": 3},
     "input": {"width": 224, "height": 224, "resize_mode": "center-crop", "interpolation": "cubic"}},
    {"defaults": {"class_agnostic_nms": True, "confidence": 0.5, "iou_threshold": 0.7, "max_detections": 300}},
])
def test_descriptors_carry_every_field(changes: dict) -> None:
    record = ModelRecord(model_id="m/1", workspace="w", artifact_uri="file:///x", spec=spec(**changes))
    back = descriptors.from_proto(descriptors.to_proto(record))
    assert _rounded(back.spec.model_dump()) == _rounded(record.spec.model_dump())  # floats travel as float32


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value
