"""Every layout's decoding against an independent decoding written here with Ultralytics' geometry.

The reference follows Ultralytics' own steps literally (full-size arrays, OpenCV resizes, greedy
loops): ``LetterBox`` placement, ``scale_boxes`` / ``scale_coords`` / ``scale_masks`` with the pad
computed as current Ultralytics computes it, from the rounded resized size (``round((W -
round(w * r)) / 2 - 0.1)``, where ``LetterBox`` put the image; older releases took it from the
unrounded ``w * r``, which is one pixel off whenever the two roundings differ, e.g. 600x400 into
640x640: placed at row 106, mapped back with 107), ``process_mask`` (upsample, crop x1 <= j < x2,
> 0), ``regularize_rboxes`` and ProbIoU fast NMS written with 2x2 covariance matrices.

One deliberate difference: Ultralytics divides by the one ratio ``r``; the worker and this
reference divide by what each axis was really resized by, ``round(w * r) / w`` (as ``scale_masks``
does when it resizes the cut window to the image), so the placed image's far edges map back to the
image's edges. The two differ by at most ``0.5 / r`` px at the far edge
(``test_letterbox_placement_and_transform_match_ultralytics`` checks that bound against Ultralytics'
own division). Coordinates must agree to 1e-3 px; masks pixel for pixel (up to float rounding at
the 0.5 boundary).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from services.common.model_spec import ModelSpec
from services.model_worker.processing.params import InferenceParams
from services.model_worker.processing.postprocess import postprocess
from services.model_worker.processing.preprocess import preprocess

NC, NM, NK = 3, 8, 4
SIZE = 320
RNG = np.random.default_rng(11)
IMAGES = [(517, 293), (300, 640), (320, 320), (1001, 997), (150, 90)]  # width, height (the last is upscaled)


def make_spec(model_type: str, anchor: str = "center") -> ModelSpec:
    task = {"yolov8": "object-detection", "yolov5": "object-detection", "yolo-e2e": "object-detection",
            "yolov8-seg": "instance-segmentation", "yolo-e2e-seg": "instance-segmentation",
            "yolov8-pose": "keypoint-detection", "yolo-e2e-pose": "keypoint-detection",
            "yolov8-obb": "oriented-detection", "yolo-e2e-obb": "oriented-detection"}[model_type]
    doc = {"task_type": task, "model_type": model_type, "class_names": [f"c{i}" for i in range(NC)],
           "input": {"width": SIZE, "height": SIZE, "anchor": anchor}, "weights": {"sha256": "0" * 64},
           "defaults": {"confidence": 0.3, "iou_threshold": 0.5, "max_detections": 300}}
    if "pose" in model_type:
        doc["keypoints"] = {"names": [f"k{i}" for i in range(NK)], "skeleton": [[0, 1], [1, 2]]}
    return ModelSpec.from_json(doc)


# ---- the reference -------------------------------------------------------------------------------
def ref_letterbox(w0: int, h0: int, centre: bool) -> tuple[float, int, int, int, int]:
    """(ratio, new_w, new_h, left, top) as Ultralytics' LetterBox(auto=False, scaleup=True)."""
    r = min(SIZE / h0, SIZE / w0)
    new_w, new_h = int(round(w0 * r)), int(round(h0 * r))
    dw, dh = SIZE - new_w, SIZE - new_h
    if centre:
        dw, dh = dw / 2, dh / 2
        return r, new_w, new_h, int(round(dw - 0.1)), int(round(dh - 0.1))
    return r, new_w, new_h, 0, 0


def ref_pads(w0: int, h0: int, centre: bool) -> tuple[float, float, int, int]:
    """(gain x, gain y, pad x, pad y): current ``scale_boxes``' pad (from the rounded resized size)
    and, per axis, the rounded resized size over the image's size (Ultralytics: the one ratio)."""
    r = min(SIZE / h0, SIZE / w0)
    rw, rh = round(w0 * r), round(h0 * r)
    if not centre:
        return rw / w0, rh / h0, 0, 0
    return rw / w0, rh / h0, round((SIZE - rw) / 2 - 0.1), round((SIZE - rh) / 2 - 0.1)


def ref_scale_boxes(boxes: np.ndarray, w0: int, h0: int, centre: bool) -> np.ndarray:
    gx, gy, px, py = ref_pads(w0, h0, centre)
    out = boxes.astype(np.float64).copy()
    out[:, [0, 2]] = ((out[:, [0, 2]] - px) / gx).clip(0, w0)
    out[:, [1, 3]] = ((out[:, [1, 3]] - py) / gy).clip(0, h0)
    return out


def ref_scale_coords(xy: np.ndarray, w0: int, h0: int, centre: bool) -> np.ndarray:
    gx, gy, px, py = ref_pads(w0, h0, centre)
    out = xy.astype(np.float64).copy()
    out[..., 0] = ((out[..., 0] - px) / gx).clip(0, w0)
    out[..., 1] = ((out[..., 1] - py) / gy).clip(0, h0)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def ref_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, thr: float) -> list[int]:
    """Greedy per-class NMS, best first; a box goes when its IoU with a kept one exceeds thr."""
    kept: list[int] = []
    for i in sorted(range(len(scores)), key=lambda k: -scores[k]):
        if all(classes[j] != classes[i] or iou(boxes[i], boxes[j]) <= thr for j in kept):
            kept.append(i)
    return kept


def cxcywh(rows: np.ndarray) -> np.ndarray:
    return np.stack([rows[:, 0] - rows[:, 2] / 2, rows[:, 1] - rows[:, 3] / 2,
                     rows[:, 0] + rows[:, 2] / 2, rows[:, 1] + rows[:, 3] / 2], axis=1)


def bhattacharyya_iou(r1: np.ndarray, r2: np.ndarray) -> float:
    """ProbIoU: 1 - Hellinger distance of the boxes' Gaussians (covariance R diag(w^2, h^2)/12 R^T)."""
    def cov(r: np.ndarray) -> np.ndarray:
        rot = np.array([[math.cos(r[4]), -math.sin(r[4])], [math.sin(r[4]), math.cos(r[4])]])
        return rot @ np.diag([r[2] ** 2 / 12, r[3] ** 2 / 12]) @ rot.T
    s1, s2 = cov(r1), cov(r2)
    s = (s1 + s2) / 2
    d = (r1[:2] - r2[:2])[:, None]
    bd = float((d.T @ np.linalg.inv(s) @ d)[0, 0]) / 8 + 0.5 * math.log(np.linalg.det(s) / math.sqrt(
        np.linalg.det(s1) * np.linalg.det(s2)))
    return 1 - math.sqrt(1 - math.exp(-min(max(bd, 1e-7), 100.0)))


def ref_regularize_scale(rb: np.ndarray, w0: int, h0: int, centre: bool) -> np.ndarray:
    out = rb.astype(np.float64).copy()
    for row in out:
        if row[4] % math.pi >= math.pi / 2:
            row[2], row[3] = row[3], row[2]
        row[4] = row[4] % (math.pi / 2)
    gx, gy, px, py = ref_pads(w0, h0, centre)
    for row in out:  # each side: the length of its direction vector mapped back
        c, s = math.cos(row[4]), math.sin(row[4])
        row[0], row[1] = (row[0] - px) / gx, (row[1] - py) / gy
        row[2], row[3] = row[2] * math.hypot(c / gx, s / gy), row[3] * math.hypot(-s / gx, c / gy)
    return out


def ref_masks(coeffs: np.ndarray, protos: np.ndarray, boxes_in: np.ndarray, w0: int, h0: int,
              centre: bool) -> list[np.ndarray]:
    """Full-image masks: upsample (cv2 bilinear), crop the box, > 0, cut the padding, resize, > 0.5."""
    r = min(SIZE / h0, SIZE / w0)
    px, py = (SIZE - round(w0 * r)) / 2, (SIZE - round(h0 * r)) / 2  # current scale_masks: the rounded size
    top, left = (round(py - 0.1), round(px - 0.1)) if centre else (0, 0)
    bottom = SIZE - round(py + 0.1) if centre else int(round(h0 * r))
    right = SIZE - round(px + 0.1) if centre else int(round(w0 * r))
    out = []
    for c, (x1, y1, x2, y2) in zip(coeffs, boxes_in):
        logit = (c @ protos.reshape(len(c), -1)).reshape(protos.shape[1:]).astype(np.float32)
        up = cv2.resize(logit, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
        cols, rows = np.arange(SIZE)[None, :], np.arange(SIZE)[:, None]
        binary = (up > 0) & (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
        cut = binary[top:bottom, left:right].astype(np.float32)
        out.append(cv2.resize(cut, (w0, h0), interpolation=cv2.INTER_LINEAR) > 0.5)
    return out


# ---- fixtures: raw outputs with well-separated, partly overlapping candidates -----------------------
def candidates(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 4) cxcywh boxes inside the input and (n, NC) scores with distinct maxima."""
    centres = RNG.uniform(30, SIZE - 30, (n, 2))
    sizes = RNG.uniform(10, 90, (n, 2))
    scores = RNG.uniform(0, 1, (n, NC)).astype(np.float32)
    scores[np.arange(n), RNG.integers(0, NC, n)] += RNG.uniform(0.0, 0.5, n).astype(np.float32) + np.arange(n) * 1e-5
    return np.concatenate([centres, sizes], axis=1).astype(np.float32), np.clip(scores, 0, 1)


def image(w0: int, h0: int) -> np.ndarray:
    return RNG.integers(0, 255, (h0, w0, 3), dtype=np.uint8)


@pytest.mark.parametrize("w0,h0", IMAGES)
@pytest.mark.parametrize("centre", [True, False])
def test_letterbox_placement_and_transform_match_ultralytics(w0: int, h0: int, centre: bool) -> None:
    spec = make_spec("yolov8", "center" if centre else "top-left")
    pixels = image(w0, h0)
    tensor, t = preprocess(pixels, spec.input)
    r, new_w, new_h, left, top = ref_letterbox(w0, h0, centre)
    resized = cv2.resize(pixels, (new_w, new_h), interpolation=cv2.INTER_LINEAR) if (new_w, new_h) != (w0, h0) \
        else pixels
    canvas = np.full((SIZE, SIZE, 3), 114, np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    np.testing.assert_array_equal(np.round(tensor * 255).astype(np.uint8).transpose(1, 2, 0), canvas)
    boxes = cxcywh(candidates(50)[0])
    np.testing.assert_allclose(t.boxes_to_original(boxes), ref_scale_boxes(boxes, w0, h0, centre), atol=1e-3)
    # Ultralytics' own division by the one ratio r: at most 0.5 / r px away, at the far edge.
    ultralytics = boxes.astype(np.float64) - [left, top, left, top]
    ultralytics = (ultralytics / r).clip(0, [w0, h0, w0, h0])
    np.testing.assert_allclose(t.boxes_to_original(boxes), ultralytics, atol=0.5 / r + 1e-3)


def _dense_reference(rows: np.ndarray, class_scores: np.ndarray, thr: float = 0.3) -> tuple[list[int], np.ndarray]:
    ids, best = class_scores.argmax(1), class_scores.max(1)
    cand = [i for i in range(len(best)) if best[i] >= thr]
    boxes = cxcywh(rows[cand, :4])
    kept = ref_nms(boxes, best[cand], ids[cand], 0.5)
    return [cand[k] for k in kept], boxes[kept]


@pytest.mark.parametrize("w0,h0", IMAGES)
@pytest.mark.parametrize("centre", [True, False])
@pytest.mark.parametrize("model_type", ["yolov8", "yolov5", "yolov8-pose", "yolov8-seg"])
def test_dense_layouts(model_type: str, w0: int, h0: int, centre: bool) -> None:
    spec = make_spec(model_type, "center" if centre else "top-left")
    _, t = preprocess(image(w0, h0), spec.input)
    boxes, scores = candidates(120)
    extra = np.zeros((120, 0), np.float32)
    if model_type == "yolov8-pose":
        kp = RNG.uniform(-20, SIZE + 20, (120, NK, 3)).astype(np.float32)
        kp[..., 2] = RNG.uniform(0, 1, (120, NK))
        extra = kp.reshape(120, -1)
    if model_type == "yolov8-seg":
        extra = RNG.normal(0, 1, (120, NM)).astype(np.float32)
    protos = RNG.normal(0, 1, (NM, SIZE // 4, SIZE // 4)).astype(np.float32)
    if model_type == "yolov5":
        objectness = RNG.uniform(0.5, 1, (120, 1)).astype(np.float32)
        outputs = [np.concatenate([boxes, objectness, scores], axis=1)]
        class_scores = scores * objectness
    else:
        outputs = [np.concatenate([boxes, scores, extra], axis=1).T.copy()]
        class_scores = scores
        if model_type == "yolov8-seg":
            outputs.append(protos)
    det = postprocess(outputs, spec, t, InferenceParams().resolve(spec))
    kept, ref_boxes_in = _dense_reference(boxes, class_scores)
    assert len(det) == len(kept) > 5
    np.testing.assert_allclose(det.boxes_xyxy, ref_scale_boxes(ref_boxes_in, w0, h0, centre), atol=1e-3)
    np.testing.assert_allclose(det.scores, class_scores[kept].max(1), atol=1e-6)
    assert det.class_ids.tolist() == class_scores[kept].argmax(1).tolist()
    if model_type == "yolov8-pose":
        np.testing.assert_allclose(det.keypoints[..., :2], ref_scale_coords(kp[kept, :, :2], w0, h0, centre),
                                   atol=1e-3)
        np.testing.assert_allclose(det.keypoints[..., 2], kp[kept, :, 2], atol=1e-6)
    if model_type == "yolov8-seg":
        for got, want in zip(det.masks, ref_masks(extra[kept], protos, ref_boxes_in, w0, h0, centre)):
            differ = np.count_nonzero(got.full(h0, w0) != want)
            assert differ <= max(2, want.sum() // 1000), (differ, want.sum())


@pytest.mark.parametrize("w0,h0", IMAGES[:3])
@pytest.mark.parametrize("centre", [True, False])
@pytest.mark.parametrize("rows", [512, 7])  # the pairwise ProbIoU matrix in one piece, or a few rows at a time
def test_oriented_boxes(w0: int, h0: int, centre: bool, rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.model_worker.processing.nms._ROWS", rows)
    spec = make_spec("yolov8-obb", "center" if centre else "top-left")
    _, t = preprocess(image(w0, h0), spec.input)
    boxes, scores = candidates(80)
    angle = RNG.uniform(-math.pi / 4, 3 * math.pi / 4, (80, 1)).astype(np.float32)
    det = postprocess([np.concatenate([boxes, scores, angle], axis=1).T.copy()], spec, t,
                      InferenceParams().resolve(spec))
    rb = np.concatenate([boxes, angle], axis=1)
    ids, best = scores.argmax(1), scores.max(1)
    order = [i for i in sorted(range(80), key=lambda k: -best[k]) if best[i] >= 0.3]
    kept = [j for n, j in enumerate(order)
            if all(ids[i] != ids[j] or bhattacharyya_iou(rb[i], rb[j]) < 0.5 for i in order[:n])]
    assert len(det) == len(kept) > 5
    np.testing.assert_allclose(det.rboxes[:, :4], ref_regularize_scale(rb[kept], w0, h0, centre)[:, :4], atol=1e-3)
    np.testing.assert_allclose(det.rboxes[:, 4], ref_regularize_scale(rb[kept], w0, h0, centre)[:, 4], atol=1e-5)


@pytest.mark.parametrize("w0,h0", IMAGES[:3])
@pytest.mark.parametrize("model_type", ["yolo-e2e", "yolo-e2e-seg", "yolo-e2e-pose", "yolo-e2e-obb"])
def test_end_to_end_layouts(model_type: str, w0: int, h0: int) -> None:
    spec = make_spec(model_type)
    _, t = preprocess(image(w0, h0), spec.input)
    k = 300
    xyxy = cxcywh(candidates(k)[0])
    score = np.sort(RNG.uniform(0, 1, k))[::-1].astype(np.float32)
    cls = RNG.integers(0, NC, k).astype(np.float32)
    head = np.concatenate([xyxy, score[:, None], cls[:, None]], axis=1)
    protos = RNG.normal(0, 1, (NM, SIZE // 4, SIZE // 4)).astype(np.float32)
    extra = {"yolo-e2e": np.zeros((k, 0)), "yolo-e2e-seg": RNG.normal(0, 1, (k, NM)),
             "yolo-e2e-pose": RNG.uniform(0, SIZE, (k, NK * 3)),
             "yolo-e2e-obb": RNG.uniform(-1, 2, (k, 1))}[model_type].astype(np.float32)
    if model_type == "yolo-e2e-obb":
        head[:, :4] = candidates(k)[0]  # cx, cy, w, h
    outputs = [np.concatenate([head, extra], axis=1)] + ([protos] if model_type == "yolo-e2e-seg" else [])
    det = postprocess(outputs, spec, t, InferenceParams(class_filter=("c0", "c2")).resolve(spec))
    kept = [i for i in range(k) if score[i] >= 0.3 and cls[i] in (0, 2)]
    assert len(det) == len(kept) > 10 and det.class_ids.tolist() == cls[kept].astype(int).tolist()
    np.testing.assert_allclose(det.scores, score[kept], atol=1e-6)
    if model_type == "yolo-e2e-obb":
        rb = np.concatenate([head[kept, :4], extra[kept]], axis=1)
        np.testing.assert_allclose(det.rboxes, ref_regularize_scale(rb, w0, h0, True), atol=1e-3)
        return
    np.testing.assert_allclose(det.boxes_xyxy, ref_scale_boxes(xyxy[kept], w0, h0, True), atol=1e-3)
    if model_type == "yolo-e2e-pose":
        kp = extra[kept].reshape(-1, NK, 3)
        np.testing.assert_allclose(det.keypoints[..., :2], ref_scale_coords(kp[..., :2], w0, h0, True), atol=1e-3)
    if model_type == "yolo-e2e-seg":
        for got, want in zip(det.masks, ref_masks(extra[kept], protos, xyxy[kept], w0, h0, True)):
            assert np.count_nonzero(got.full(h0, w0) != want) <= max(2, want.sum() // 1000)


def test_center_crop_takes_the_middle_square() -> None:
    spec = ModelSpec.from_json({"task_type": "classification", "model_type": "yolov8-cls", "class_names": ["a"],
                                "input": {"width": 64, "height": 64, "resize_mode": "center-crop",
                                          "interpolation": "area"}, "weights": {"sha256": "0" * 64}})
    pixels = image(300, 200)
    tensor, _ = preprocess(pixels, spec.input)
    want = cv2.resize(pixels[:, 50:250], (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(np.round(tensor * 255).astype(np.uint8).transpose(1, 2, 0), want)
