"""The geometry metrics: a perfect answer scores 1, a wrong keypoint order or a turned box does not."""

from __future__ import annotations

import math

import numpy as np

from services.demo.corners import canonical_corners, obb_corners, obb_truth, pose_truth, xywhr
from services.demo.geometry_eval import evaluate_obb, evaluate_pose, rotated_iou
from services.demo.scenes import TEST_SEEDS, generate_scene
from services.model_worker.processing.results import Detections

SCENES = [[generate_scene(seed) for seed in range(TEST_SEEDS, TEST_SEEDS + 8)]]


class Oracle:
    """Answers the ground truth, optionally spoiled by ``spoil``."""

    def __init__(self, kind: str, spoil=None) -> None:  # noqa: ANN001
        self.kind, self.spoil = kind, spoil or (lambda a: a)

    def predict(self, images: list[np.ndarray]) -> list[Detections]:
        out = []
        for scene in SCENES[0][: len(images)]:
            if self.kind == "pose":
                t = pose_truth(scene)
                kp = t.keypoints.copy()
                kp[..., 2] = (kp[..., 2] > 0).astype(np.float32)
                out.append(Detections(t.boxes, np.ones(len(t.labels), np.float32), t.labels, keypoints=self.spoil(kp)))
            else:
                rb = obb_truth(scene)
                out.append(Detections(np.zeros((len(rb), 4), np.float32), np.ones(len(rb), np.float32),
                                      np.zeros(len(rb), np.int64), rboxes=self.spoil(rb)))
        return out


def test_perfect_answers_score_one_and_spoiled_ones_do_not() -> None:
    assert evaluate_pose(Oracle("pose"), SCENES, 8)["oks_ap50"] == 1.0
    shifted = evaluate_pose(Oracle("pose", lambda kp: np.roll(kp, 1, axis=1)), SCENES, 8)
    assert shifted["oks_ap50"] < 0.3  # corners in the wrong slots
    assert evaluate_obb(Oracle("obb"), SCENES, 8)["obb_ap50"] == 1.0
    def slide(rb: np.ndarray) -> np.ndarray:  # half a width along the box's own axis: IoU 1/3
        rb = rb.copy()
        rb[:, 0] += rb[:, 2] / 2 * np.cos(rb[:, 4])
        rb[:, 1] += rb[:, 2] / 2 * np.sin(rb[:, 4])
        return rb
    assert evaluate_obb(Oracle("obb", slide), SCENES, 8)["obb_ap50"] < 0.1


def test_rectangle_geometry_round_trips() -> None:
    corners = np.array([[10, 0], [30, 20], [20, 30], [0, 10]], np.float32)
    rb = xywhr(corners)
    assert rb[2] >= rb[3] and -math.pi / 4 <= rb[4] < 3 * math.pi / 4
    back = obb_corners(rb[None])[0]
    assert sorted(map(tuple, np.round(back, 4))) == sorted(map(tuple, np.round(corners, 4)))
    assert rotated_iou(rb, rb) == 1.0
    np.testing.assert_allclose(canonical_corners(corners[[2, 3, 0, 1]])[0], [10, 0])  # topmost first
