"""Target assignment and losses for :class:`~services.demo.train.models.ShapeYolo`.

Assignment (FCOS-style centre sampling): a point is a positive for a ground-truth box when it
lies inside the box, within ``CENTER_RADIUS`` strides of its centre, and on a pyramid level
whose size range covers the box's longer side. A point claimed by several boxes takes the
smallest; a box that got no point (tiny or thin) takes the nearest point of its level.

Losses, normalised by the number of positives: BCE on class logits (at positives the target is
the predicted box's IoU relative to the best prediction for the same object, raised to
``QUALITY_POWER``, so scores rank boxes by localisation quality and poor ones score near zero;
zeros elsewhere), GIoU plus L1 (in strides) on positive boxes, and for segmentation the YOLOv8 mask loss
(per-pixel BCE of ``coeffs . protos`` against the instance mask, inside the box only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from services.demo.train.models import DetectorOutput

CENTER_RADIUS = 2.5
# Longer box side (input px) each stride is responsible for; neighbours overlap on purpose.
LEVEL_RANGES = {8: (0.0, 64.0), 16: (32.0, 128.0), 32: (64.0, float("inf"))}
BOX_WEIGHT = 2.5
L1_WEIGHT = 0.5  # on box sides in stride units: a steady pull towards pixel precision
QUALITY_POWER = 4.0  # sharpens class targets so that poorly placed boxes score near zero
MASK_WEIGHT = 2.0
PROTO_STRIDE = 4


@dataclass
class Targets:
    """Ground truth of one image in input pixels."""

    boxes: Tensor  # M x 4 xyxy
    labels: Tensor  # M
    masks: Tensor | None = None  # M x 80 x 80 coverage in [0, 1]
    extra: Tensor | None = None  # M x ...: what ``extra_loss`` compares the extra outputs with


#: (model output, image index and point index of each positive, its ground truth's ``extra``) ->
#: the summed loss of the extra outputs (keypoints, oriented boxes) over the positives.
ExtraLoss = Callable[[DetectorOutput, Tensor, Tensor, Tensor], Tensor]


def assign(points: Tensor, strides: Tensor, boxes: Tensor) -> Tensor:
    """For each of the N points, the index of its ground-truth box, or -1 for background."""
    matched = torch.full((points.shape[0],), -1, dtype=torch.long)
    if boxes.shape[0] == 0:
        return matched
    px, py = points[:, :1], points[:, 1:]
    x1, y1, x2, y2 = boxes.unbind(-1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    inside = (px > x1) & (px < x2) & (py > y1) & (py < y2)
    radius = CENTER_RADIUS * strides
    near = ((px - cx).abs() < radius) & ((py - cy).abs() < radius)
    low, high = _level_bounds(strides)
    longer = torch.maximum(x2 - x1, y2 - y1)
    in_level = (longer >= low) & (longer <= high)
    candidate = inside & near & in_level

    missing = ~candidate.any(dim=0)
    if missing.any():
        distance = ((px - cx) ** 2 + (py - cy) ** 2).masked_fill(~in_level, float("inf"))
        nearest = distance.argmin(dim=0)
        gt = torch.nonzero(missing).flatten()
        candidate[nearest[gt], gt] = True

    area = ((x2 - x1) * (y2 - y1)).expand_as(candidate)
    cost = torch.where(candidate, area, torch.full_like(area, float("inf")))
    best = cost.argmin(dim=1)
    return torch.where(candidate.any(dim=1), best, matched)


def _level_bounds(strides: Tensor) -> tuple[Tensor, Tensor]:
    low = torch.empty_like(strides)
    high = torch.empty_like(strides)
    for stride, (lo, hi) in LEVEL_RANGES.items():
        at = strides == stride
        low[at], high[at] = lo, hi
    return low, high


def giou(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """(IoU, generalised IoU) of paired xyxy boxes (K x 4 each), each of shape K."""
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp_min(0).prod(dim=1)
    area_a = (a[:, 2:] - a[:, :2]).prod(dim=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(dim=1)
    union = area_a + area_b - inter
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(dim=1)
    iou = inter / union.clamp_min(1e-6)
    return iou, iou - (hull - union) / hull.clamp_min(1e-6)


def _quality(iou: Tensor, gt: Tensor, count: int) -> Tensor:
    """Class targets of positives: (IoU / best IoU among the same box's positives) ** power."""
    best = torch.zeros(count).scatter_reduce(0, gt, iou, reduce="amax", include_self=False)
    return (iou / best[gt].clamp_min(1e-6)) ** QUALITY_POWER


def detection_loss(
    out: DetectorOutput, targets: list[Targets], points: Tensor, strides: Tensor,
    extra_loss: ExtraLoss | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """Total loss of a batch and its parts (for logging).

    Positives of the whole batch are gathered with one index operation (per-image indexing
    would make autograd zero-fill a full-size gradient for every image).
    """
    cls_target = torch.zeros_like(out.logits)
    image_index, point_index, gt_boxes, gt_masks, gt_extra = [], [], [], [], []
    for b, target in enumerate(targets):
        matched = assign(points, strides, target.boxes)
        positive = torch.nonzero(matched >= 0).flatten()
        gt = matched[positive]
        iou, _ = giou(out.boxes[b, positive].detach(), target.boxes[gt])
        cls_target[b, positive, target.labels[gt]] = _quality(iou, gt, len(target.boxes))
        image_index.append(torch.full_like(positive, b))
        point_index.append(positive)
        gt_boxes.append(target.boxes[gt])
        if target.masks is not None:
            gt_masks.append(target.masks[gt].float())
        if target.extra is not None:
            gt_extra.append(target.extra[gt])
    images, positives = torch.cat(image_index), torch.cat(point_index)
    boxes = torch.cat(gt_boxes)
    num_positive = max(len(positives), 1)
    cls_loss = F.binary_cross_entropy_with_logits(out.logits, cls_target, reduction="sum") / num_positive
    predicted = out.boxes[images, positives]
    box_loss = (1.0 - giou(predicted, boxes)[1]).sum() / num_positive
    l1_loss = ((predicted - boxes).abs() / strides[positives]).sum() / num_positive
    total = cls_loss + BOX_WEIGHT * box_loss + L1_WEIGHT * l1_loss
    parts = {"cls": cls_loss.item(), "box": box_loss.item(), "l1": l1_loss.item()}
    if extra_loss is not None and gt_extra:
        extra = extra_loss(out, images, positives, torch.cat(gt_extra)) / num_positive
        total = total + extra
        parts["extra"] = extra.item()
    if out.coeffs is not None and out.protos is not None and gt_masks:
        counts = [len(p) for p in point_index]
        coeffs = torch.split(out.coeffs[images, positives], counts)
        protos = out.protos.unbind(0)
        mask_losses = [
            _mask_loss(c, p, m, bx)
            for c, p, m, bx in zip(coeffs, protos, gt_masks, torch.split(boxes, counts))
            if len(c)
        ]
        mask_loss = torch.cat(mask_losses).sum() / num_positive
        total = total + MASK_WEIGHT * mask_loss
        parts["mask"] = mask_loss.item()
    return total, parts


def _mask_loss(coeffs: Tensor, protos: Tensor, masks: Tensor, boxes: Tensor) -> Tensor:
    """Per-positive mask BCE averaged over the box area (in prototype pixels)."""
    size = protos.shape[-1]
    logits = (coeffs @ protos.flatten(1)).view(-1, size, size)
    bce = F.binary_cross_entropy_with_logits(logits, masks, reduction="none")
    grid = torch.arange(size, dtype=torch.float32) + 0.5
    scaled = boxes / PROTO_STRIDE
    in_x = (grid >= scaled[:, 0:1]) & (grid <= scaled[:, 2:3])
    in_y = (grid >= scaled[:, 1:2]) & (grid <= scaled[:, 3:4])
    crop = (in_y[:, :, None] & in_x[:, None, :]).float()
    return (bce * crop).sum(dim=(1, 2)) / crop.sum(dim=(1, 2)).clamp_min(1.0)
