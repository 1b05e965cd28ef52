"""Losses of the extra outputs of the geometry tasks: corner keypoints and oriented boxes.

Keypoints: the corners of a rectangle or triangle have no natural first corner, so the L1 error
(in strides) is the smallest over the cyclic shifts of the ground truth's clockwise order; the
export then rotates the predicted order to start at the topmost corner (``canonical_order``).
Visibility: BCE (a triangle's fourth slot is absent).
Oriented boxes: 1 - ProbIoU (the Bhattacharyya-based IoU of the boxes' Gaussians that
Ultralytics trains its OBB models with; symmetric under w/h swap with a quarter turn).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from services.demo.train.loss import ExtraLoss
from services.demo.train.models import DetectorOutput, obb_xywhr, pose_keypoints

KEYPOINT_WEIGHT = 1.0
VISIBILITY_WEIGHT = 0.5
OBB_WEIGHT = 4.0
_EPS = 1e-7


def pose_loss(points: Tensor, strides: Tensor, num_keypoints: int) -> ExtraLoss:
    """Extra loss for targets P x K x 3 (x, y, present 0/1)."""

    def loss(out: DetectorOutput, images: Tensor, positives: Tensor, target: Tensor) -> Tensor:
        kp = pose_keypoints(out, strides, points, num_keypoints)[images, positives]
        scale = strides[positives]  # P x 1
        present = target[..., 2] > 0
        count = present.sum(dim=1, keepdim=True).clamp_min(1)
        slots = torch.arange(num_keypoints)
        errors = []
        for shift in range(num_keypoints):
            index = torch.where(present, (slots + shift) % count, slots)
            shifted = target.gather(1, index[..., None].expand_as(target))
            distance = (kp[..., :2] - shifted[..., :2]).abs().sum(dim=-1) * present
            errors.append(distance.sum(dim=1) / scale[:, 0])
        l1 = torch.stack(errors).min(dim=0).values
        visibility = F.binary_cross_entropy_with_logits(kp[..., 2], present.float(), reduction="none").sum(dim=1)
        return KEYPOINT_WEIGHT * l1.sum() + VISIBILITY_WEIGHT * visibility.sum()

    return loss


def _covariance(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    a, b = boxes[:, 2] ** 2 / 12, boxes[:, 3] ** 2 / 12
    cos, sin = torch.cos(boxes[:, 4]), torch.sin(boxes[:, 4])
    return a * cos**2 + b * sin**2, a * sin**2 + b * cos**2, (a - b) * cos * sin


def probiou(pred: Tensor, target: Tensor) -> Tensor:
    """ProbIoU of paired xywhr boxes (P x 5 each)."""
    a1, b1, c1 = _covariance(pred)
    a2, b2, c2 = _covariance(target)
    dx, dy = pred[:, 0] - target[:, 0], pred[:, 1] - target[:, 1]
    a, b, c = a1 + a2, b1 + b2, c1 + c2
    det = a * b - c**2
    t1 = (a * dy**2 + b * dx**2) / (det + _EPS) * 0.25
    t2 = (c * -dx * dy) / (det + _EPS) * 0.5
    own = (a1 * b1 - c1**2).clamp_min(0) * (a2 * b2 - c2**2).clamp_min(0)
    t3 = torch.log(det / (4 * own.sqrt() + _EPS) + _EPS) * 0.5
    distance = (t1 + t2 + t3).clamp(_EPS, 100.0)
    return 1 - torch.sqrt(1 - torch.exp(-distance) + _EPS)


def obb_loss(strides: Tensor) -> ExtraLoss:
    """Extra loss for targets P x 5 (cx, cy, w, h, angle)."""

    def loss(out: DetectorOutput, images: Tensor, positives: Tensor, target: Tensor) -> Tensor:
        pred = obb_xywhr(out, strides)[images, positives]
        return OBB_WEIGHT * (1 - probiou(pred, target)).sum()

    return loss

