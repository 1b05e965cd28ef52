"""Post-processing (decode, NMS, masks, classification) against hand-computed expectations."""

from __future__ import annotations

import numpy as np
import pytest

from services.common.errors import InvalidArgument, ModelLoadError
from services.common.model_spec import ModelSpec
from services.model_worker.processing.nms import nms
from services.model_worker.processing.params import InferenceParams
from services.model_worker.processing.postprocess import check_output_shapes, postprocess
from services.model_worker.processing.preprocess import Transform

NAMES = ["circle", "rectangle", "triangle"]
IDENTITY = Transform(320, 320, 1.0, 1.0, 0.0, 0.0)


def make_spec(model_type: str = "yolov8", **kw: object) -> ModelSpec:
    task = {"yolov8": "object-detection", "yolov5": "object-detection", "yolov8-seg": "instance-segmentation",
            "yolov8-cls": "classification"}[model_type]
    outputs = ["output0", "output1"] if model_type == "yolov8-seg" else ["output0"]
    return ModelSpec.from_json({
        "task_type": task, "model_type": model_type, "class_names": NAMES, "outputs": outputs,
        "input": {"width": 320, "height": 320}, "weights": {"sha256": "0" * 64}, **kw,
    })


def v8_output(rows: list[tuple[float, float, float, float, list[float]]]) -> np.ndarray:
    """[4 + nc, N] from (cx, cy, w, h, scores) rows."""
    return np.array([[cx, cy, w, h, *scores] for cx, cy, w, h, scores in rows], np.float32).T


def params(**kw: object):
    return InferenceParams(**kw).resolve(make_spec())


def test_yolov8_keeps_best_class_and_converts_boxes() -> None:
    out = v8_output([(100, 100, 40, 20, [0.1, 0.9, 0.2]), (200, 200, 10, 10, [0.05, 0.1, 0.2])])
    det = postprocess([out], make_spec(), IDENTITY, params(confidence=0.25))
    assert len(det) == 1
    assert det.class_ids.tolist() == [1]
    assert det.scores.tolist() == pytest.approx([0.9])
    assert det.boxes_xyxy.tolist() == [[80, 90, 120, 110]]


def test_nms_suppresses_same_class_overlap_but_not_other_classes() -> None:
    # Two boxes with IoU 0.6 (x-shift of 10 on width 40 -> inter 30*20, union 50*20 -> 0.6).
    out = v8_output([
        (100, 100, 40, 20, [0.9, 0.0, 0.0]),
        (110, 100, 40, 20, [0.8, 0.0, 0.0]),
        (105, 100, 40, 20, [0.0, 0.7, 0.0]),
    ])
    det = postprocess([out], make_spec(), IDENTITY, params(iou_threshold=0.5))
    assert sorted(det.class_ids.tolist()) == [0, 1]
    det = postprocess([out], make_spec(), IDENTITY, params(iou_threshold=0.65))
    assert det.class_ids.tolist() == [0, 0, 1]
    agnostic = postprocess([out], make_spec(), IDENTITY, params(iou_threshold=0.5, class_agnostic_nms=True))
    assert agnostic.class_ids.tolist() == [0]


def test_nms_iou_boundary_is_exclusive() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 5, 10, 15]], np.float32)  # IoU = 50 / 150 = 1/3
    scores = np.array([0.9, 0.8], np.float32)
    ids = np.zeros(2, np.int64)
    assert nms(boxes, scores, ids, 0.34, 10, False).tolist() == [0, 1]
    assert nms(boxes, scores, ids, 0.33, 10, False).tolist() == [0]


def test_max_detections_and_class_filter() -> None:
    rows = [(i * 30.0 + 20, 50, 10, 10, [0.9 - i * 0.01, 0.0, 0.5]) for i in range(8)]
    det = postprocess([v8_output(rows)], make_spec(), IDENTITY, params(max_detections=3))
    assert len(det) == 3
    assert det.scores.tolist() == pytest.approx([0.9, 0.89, 0.88])
    only_triangles = postprocess([v8_output(rows)], make_spec(), IDENTITY, params(class_filter=("triangle",)))
    assert set(only_triangles.class_ids.tolist()) == {2}
    assert len(only_triangles) == 8


def test_unknown_class_filter_and_bad_parameters_are_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="not classes of this model"):
        params(class_filter=("dog",))
    for bad in ({"confidence": -0.1}, {"iou_threshold": 1.5}, {"max_detections": 0}, {"max_candidates": 0}):
        with pytest.raises(InvalidArgument):
            InferenceParams(**bad)


def test_max_candidates_bounds_work_before_nms() -> None:
    rows = [(20.0 + i * 30, 50, 10, 10, [0.3 + i * 0.05, 0, 0]) for i in range(10)]
    det = postprocess([v8_output(rows)], make_spec(), IDENTITY, params(max_candidates=2))
    assert det.scores.tolist() == pytest.approx([0.75, 0.7])


def test_yolov5_multiplies_objectness_and_class_probability() -> None:
    out = np.array([
        [100, 100, 40, 20, 0.5, 0.2, 0.9, 0.1],  # score 0.45 for class 1
        [200, 200, 40, 20, 0.2, 0.9, 0.1, 0.1],  # score 0.18: below 0.25
    ], np.float32)
    det = postprocess([out], make_spec("yolov5"), IDENTITY, InferenceParams().resolve(make_spec("yolov5")))
    assert det.class_ids.tolist() == [1]
    assert det.scores.tolist() == pytest.approx([0.45])
    assert det.boxes_xyxy.tolist() == [[80, 90, 120, 110]]


def test_segmentation_mask_is_cropped_to_box_in_original_pixels() -> None:
    spec = make_spec("yolov8-seg")
    nm = 4
    out = np.zeros((4 + 3 + nm, 5), np.float32)
    # Original 800x400, letterboxed: scale 0.4, pad_y 80. Object (100,100)-(300,200) -> input (40,120)-(120,160).
    out[:, 0] = [80, 140, 80, 40, 0.1, 0.9, 0.0, 10, 0, 0, 0]
    protos = np.full((nm, 80, 80), -10, np.float32)
    protos[0, 30:40, 10:20] = 10  # only the left half of the box in proto space (input x 40..80 -> 100..200)
    transform = Transform(800, 400, 0.4, 0.4, 0.0, 80.0)
    det = postprocess([out, protos], spec, transform, InferenceParams().resolve(spec))
    assert det.boxes_xyxy.tolist() == [[100, 100, 300, 200]]
    mask = det.masks[0]
    full = mask.full(400, 800)
    assert full[150, 150] and not full[150, 250]  # left half in, right half out
    assert not full[:100].any() and not full[:, 300:].any()  # nothing outside the box
    assert 100 * 100 * 0.9 < mask.area < 100 * 100 * 1.1
    poly = mask.polygon()
    assert poly[:, 0].min() >= 100 and poly[:, 0].max() <= 205 and poly[:, 1].min() >= 100


def test_classification_sorts_and_filters() -> None:
    spec = make_spec("yolov8-cls")
    out = np.array([0.2, 0.7, 0.1], np.float32)
    res = postprocess([out], spec, IDENTITY, InferenceParams().resolve(spec))
    assert res.class_ids.tolist() == [1, 0, 2]
    assert res.top_class_id == 1 and res.top_score == pytest.approx(0.7)
    res = postprocess([out], spec, IDENTITY, InferenceParams(class_filter=("circle", "triangle")).resolve(spec))
    assert res.class_ids.tolist() == [0, 2]


def test_multi_label_classification_reports_classes_above_confidence() -> None:
    spec = make_spec("yolov8-cls", multi_label=True)
    out = np.array([0.8, 0.3, 0.6], np.float32)
    res = postprocess([out], spec, IDENTITY, InferenceParams(confidence=0.5).resolve(spec))
    assert res.predicted_class_ids.tolist() == [0, 2]


@pytest.mark.parametrize("model_type,shapes", [
    ("yolov8", [[8, 2100]]),  # 4 + 3 classes = 7 rows, not 8
    ("yolov5", [[2100, 7]]),  # needs 5 + 3 = 8 columns
    ("yolov8-cls", [[4]]),
    ("yolov8-seg", [[4 + 3 + 32, 2100], [32, 40, 40]]),  # prototypes must be input/4 = 80
    ("yolov8-seg", [[4 + 3 + 16, 2100], [32, 80, 80]]),  # coefficients disagree with prototypes
    ("yolov8", [[7, 2100], [1]]),  # an extra output
])
def test_output_shapes_that_do_not_match_the_model_type_are_refused(model_type: str, shapes: list) -> None:
    with pytest.raises(ModelLoadError, match="do not match model_type"):
        check_output_shapes(make_spec(model_type), shapes)


def test_symbolic_dimensions_are_accepted() -> None:
    check_output_shapes(make_spec("yolov8"), [[7, "anchors"]])
    check_output_shapes(make_spec("yolov8-seg"), [["c", "n"], [32, 80, 80]])
