"""``fleet package`` on exports made here with Ultralytics-style (and YOLOv5, YOLOv10) metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.cli.main import main
from services.common.errors import ModelLoadError, ModelPackageError
from services.common.model_spec import ModelSpec
from services.model_worker.artifacts import sha256_file
from services.model_worker.runtime import RuntimeOptions, open_session
from services.packaging.exports import read_export
from services.packaging.inference import Overrides, describe
from services.packaging.writer import verify, write_package
from tests.onnx_factory import export_like, ultralytics_metadata

NAMES = ["cat", "dog", "bird"]
N = (64 // 8) ** 2


def package(tmp_path: Path, onnx_bytes: bytes, **overrides: object) -> ModelSpec:
    source = tmp_path / "export.onnx"
    source.write_bytes(onnx_bytes)
    out = tmp_path / "pkg"
    spec = write_package(source, describe(read_export(source), Overrides(**overrides)), out, force=True)
    document = json.loads((out / "model.json").read_text())
    assert document["weights"]["sha256"] == sha256_file(out / "model.onnx") == spec.weights.sha256
    assert document["weights"]["size_bytes"] == (out / "model.onnx").stat().st_size
    assert ModelSpec.from_package(out) == spec
    return spec


@pytest.mark.parametrize("task,outputs,model_type,extra", [
    ("detect", [("output0", "dense", (4 + 3,))], "yolov8", {}),
    ("segment", [("output0", "dense", (4 + 3 + 32,)), ("output1", "protos", (32,))], "yolov8-seg", {}),
    ("pose", [("output0", "dense", (4 + 3 + 17 * 3,))], "yolov8-pose", {"kpt_shape": [17, 3]}),
    ("pose", [("output0", "dense", (4 + 3 + 5 * 2,))], "yolov8-pose", {"kpt_shape": [5, 2]}),
    ("obb", [("output0", "dense", (4 + 3 + 1,))], "yolov8-obb", {}),
    ("classify", [("output0", "vector", (3,))], "yolov8-cls", {}),
    ("detect", [("output0", "rows", (6,))], "yolo-e2e", {"end2end": True}),
    ("segment", [("output0", "rows", (6 + 32,)), ("output1", "protos", (32,))], "yolo-e2e-seg", {"end2end": True}),
    ("pose", [("output0", "rows", (6 + 17 * 3,))], "yolo-e2e-pose", {"end2end": True, "kpt_shape": [17, 3]}),
    ("obb", [("output0", "rows", (7,))], "yolo-e2e-obb", {"end2end": True}),
])
def test_every_ultralytics_layout_is_recognised(tmp_path: Path, task: str, outputs: list, model_type: str,
                                                extra: dict) -> None:
    spec = package(tmp_path, export_like(outputs, metadata=ultralytics_metadata(task, NAMES, **extra)))
    assert spec.model_type == model_type and spec.class_names == tuple(NAMES)
    assert (spec.input.name, spec.input.width, spec.input.height) == ("images", 64, 64)
    assert spec.outputs == tuple(name for name, _, _ in outputs)
    assert spec.batch.max_batch_size == 16  # dynamic batch dimension
    assert spec.provenance["metadata"]["task"] == task and spec.provenance["exporter"].startswith("pytorch")
    if task == "classify":
        assert spec.input.resize_mode.value == "center-crop"
    if task == "pose":
        assert spec.keypoints is not None and len(spec.keypoints.names) == extra["kpt_shape"][0]
        assert spec.keypoints.dims == extra["kpt_shape"][1]
    else:
        assert spec.keypoints is None


def test_coco_pose_gets_named_keypoints_and_a_skeleton(tmp_path: Path) -> None:
    spec = package(tmp_path, export_like([("output0", "dense", (4 + 1 + 51,))],
                                         metadata=ultralytics_metadata("pose", ["person"], kpt_shape=[17, 3])))
    assert spec.keypoints.names[0] == "nose" and (5, 6) in spec.keypoints.skeleton


def test_fixed_batch_export(tmp_path: Path) -> None:
    onnx_bytes = export_like([("output0", "dense", (7,))], batch=1, metadata=ultralytics_metadata("detect", NAMES))
    assert package(tmp_path, onnx_bytes).batch.max_batch_size == 1
    with pytest.raises(ModelPackageError, match="fixed batch of 1"):
        package(tmp_path, onnx_bytes, max_batch_size=4)


def test_dynamic_size_takes_the_exports_imgsz_and_refuses_without_it(tmp_path: Path) -> None:
    onnx_bytes = export_like([("output0", "dense", (7,))], dynamic_size=True,
                             metadata=ultralytics_metadata("detect", NAMES, imgsz=96))
    spec = package(tmp_path, onnx_bytes)
    assert (spec.input.width, spec.input.height) == (96, 96)
    with pytest.raises(ModelPackageError, match="disagrees with --imgsz"):
        package(tmp_path, onnx_bytes, imgsz=(64, 64))
    bare = export_like([("output0", "dense", (7,))], dynamic_size=True,
                       metadata=ultralytics_metadata("detect", NAMES, imgsz=None))
    with pytest.raises(ModelPackageError, match="pass --imgsz"):
        package(tmp_path, bare)
    assert package(tmp_path, bare, imgsz=(128, 160)).input.width == 160


def test_a_worker_refuses_a_dynamic_size_export_declared_at_another_size(tmp_path: Path) -> None:
    spec = package(tmp_path, export_like([("output0", "dense", (7,))], dynamic_size=True,
                                         metadata=ultralytics_metadata("detect", NAMES, imgsz=96)))
    wrong = spec.model_copy(update={"input": spec.input.model_copy(update={"width": 128, "height": 128})})
    with pytest.raises(ModelLoadError, match=r"exported with imgsz \[96, 96\]"):
        open_session(tmp_path / "pkg" / "model.onnx", wrong, RuntimeOptions(execution_provider="cpu"))


def test_packaging_makes_the_workers_load_checks_without_onnx_runtime(tmp_path: Path) -> None:
    spec = package(tmp_path, export_like([("output0", "dense", (7,))], dynamic_size=True,
                                         metadata=ultralytics_metadata("detect", NAMES, imgsz=96)))
    weights = tmp_path / "pkg" / "model.onnx"
    resized = spec.model_copy(update={"input": spec.input.model_copy(update={"width": 128, "height": 128})})
    with pytest.raises(ModelLoadError, match=r"exported with imgsz \[96, 96\]"):
        verify(weights, resized)
    with pytest.raises(ModelLoadError, match="do not match model_type 'yolov8' with 2 classes"):
        verify(weights, spec.model_copy(update={"class_names": NAMES[:2]}))
    with pytest.raises(ModelLoadError, match=r"model.json names \['boxes'\]"):
        verify(weights, spec.model_copy(update={"outputs": ("boxes",)}))
    with pytest.raises(ModelLoadError, match="input is named 'images', but model.json says 'pixels'"):
        verify(weights, spec.model_copy(update={"input": spec.input.model_copy(update={"name": "pixels"})}))


def test_static_size_disagreeing_with_imgsz_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelPackageError, match="disagrees with the export's imgsz"):
        package(tmp_path, export_like([("output0", "dense", (7,))],
                                      metadata=ultralytics_metadata("detect", NAMES, imgsz=640)))


def test_yolov5_metadata(tmp_path: Path) -> None:
    meta = {"stride": "32", "names": str(dict(enumerate(NAMES)))}
    spec = package(tmp_path, export_like([("output0", "rows", (5 + 3,))], metadata=meta))
    assert spec.model_type == "yolov5" and spec.defaults.iou_threshold == 0.45


def test_no_metadata_is_refused_until_names_are_given(tmp_path: Path) -> None:
    onnx_bytes = export_like([("output0", "dense", (7,))])
    with pytest.raises(ModelPackageError, match="no class names"):
        package(tmp_path, onnx_bytes)
    assert package(tmp_path, onnx_bytes, class_names=tuple(NAMES)).model_type == "yolov8"


def test_ambiguous_outputs_are_refused_until_the_model_type_is_given(tmp_path: Path) -> None:
    # [N, 7] rows without task metadata: YOLOv5 with 2 classes, or an end-to-end oriented-box model.
    meta = {"names": str(dict(enumerate(NAMES[:2])))}
    onnx_bytes = export_like([("output0", "rows", (7,))], metadata=meta)
    with pytest.raises(ModelPackageError, match=r"fit several layouts: \['yolov5', 'yolo-e2e-obb'\]"):
        package(tmp_path, onnx_bytes)
    assert package(tmp_path, onnx_bytes, model_type="yolo-e2e-obb").task_type == "oriented-detection"


@pytest.mark.parametrize("outputs,meta,message", [
    ([("output0", "dense", (9,))], ultralytics_metadata("detect", NAMES), "do not fit any supported layout"),
    ([("output0", "dense", (7,))], ultralytics_metadata("pose", NAMES), "do not fit"),  # no kpt_shape
    ([("output0", "dense", (7,))], ultralytics_metadata("detect", NAMES, names_gap=1) | {"names": "{0: 'a', 2: 'b'}"},
     "gaps"),
])
def test_bad_exports_are_refused(tmp_path: Path, outputs: list, meta: dict, message: str) -> None:
    with pytest.raises(ModelPackageError, match=message):
        package(tmp_path, export_like(outputs, metadata=meta))


def test_not_onnx_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelPackageError, match="not an ONNX model"):
        read_export(tmp_path / "x.onnx")


def test_cli_writes_the_package_and_checks_it_on_an_image(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from fleet.paths import SAMPLES_DIR

    source = tmp_path / "yolo.onnx"
    source.write_bytes(export_like([("output0", "dense", (7,))], metadata=ultralytics_metadata("detect", NAMES)))
    with pytest.raises(SystemExit) as done:
        main(["package", str(source), "--out", str(tmp_path / "out"), "--check", str(SAMPLES_DIR / "shapes-1.jpg")])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "model_type yolov8" in printed and "image 800x" in printed and "detections" in printed
    with pytest.raises(SystemExit) as again:  # the package exists now
        main(["package", str(source), "--out", str(tmp_path / "out")])
    assert again.value.code == 2 and "pass --force" in capsys.readouterr().err
