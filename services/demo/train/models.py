"""Small CNNs for the demo tasks and the wrappers that give them Ultralytics output layouts.

* :class:`ShapeYolo`: anchor-free detector (optionally with YOLOv8-style mask prototypes)
  on a 320x320 letterboxed input; strides 8/16/32 give 40x40 + 20x20 + 10x10 = 2100 points.
* :class:`ShapeClassifier`: estimates per-cell class coverage on 128x128 inputs and picks the
  class with the largest share.

The export wrappers (:class:`YoloV8Export`, :class:`YoloV8SegExport`, :class:`YoloV5Export`,
:class:`ClassifierExport`) only rearrange the trained model's outputs; they add no weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DETECTION_INPUT = 320
CLASSIFIER_INPUT = 128
STRIDES = (8, 16, 32)
COVERAGE_STRIDE = STRIDES[0]  # the classifier estimates class coverage on a 16x16 grid
BACKBONE_WIDTHS = (12, 24, 32, 64, 96)  # stride 2, 4, 8, 16, 32
NECK_WIDTH = 48
NUM_MASKS = 32
_BOX_BIAS = 2.3  # softplus(2.3) ~ 2.4 strides: initial distance from a point to each box side
_CLS_BIAS = -4.6  # sigmoid(-4.6) ~ 0.01: the usual prior for rare positives


class ConvBN(nn.Sequential):
    """Conv (no bias) + BatchNorm + ReLU; the exporter folds the BatchNorm into the conv."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class Residual(nn.Module):
    """Two 3x3 ConvBNs with an identity shortcut."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBN(channels, channels), ConvBN(channels, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class Backbone(nn.Module):
    """Strided conv stages; returns the stride 8, 16 and 32 feature maps."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(ConvBN(3, w0, stride=2), ConvBN(w0, w1, stride=2))  # stride 4
        self.stage3 = nn.Sequential(ConvBN(w1, w2, stride=2), Residual(w2))
        self.stage4 = nn.Sequential(ConvBN(w2, w3, stride=2), Residual(w3))
        self.stage5 = nn.Sequential(ConvBN(w3, w4, stride=2), Residual(w4))
        self.channels = (w2, w3, w4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        c3 = self.stage3(self.stem(x))
        c4 = self.stage4(c3)
        return c3, c4, self.stage5(c4)


class FeaturePyramid(nn.Module):
    """Top-down FPN: 1x1 laterals added to the nearest-upsampled coarser level.

    (The 3x3 conv that usually smooths each merged map is the first layer of each head.)
    """

    def __init__(self, channels: tuple[int, ...], width: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)

    def forward(self, features: tuple[Tensor, ...]) -> list[Tensor]:
        merged = [lat(f) for lat, f in zip(self.lateral, features)]
        for i in range(len(merged) - 2, -1, -1):
            merged[i] = merged[i] + F.interpolate(merged[i + 1], scale_factor=2.0, mode="nearest")
        return merged


class DecoupledHead(nn.Module):
    """Separate conv branches for box distances (4) and class logits (+ mask coefficients)."""

    def __init__(self, width: int, num_classes: int, num_masks: int) -> None:
        super().__init__()
        box_features, box_pred = ConvBN(width, width), nn.Conv2d(width, 4, 1)
        cls_features, cls_pred = ConvBN(width, width), nn.Conv2d(width, num_classes + num_masks, 1)
        assert box_pred.bias is not None and cls_pred.bias is not None
        nn.init.constant_(box_pred.bias, _BOX_BIAS)
        nn.init.zeros_(cls_pred.bias)
        nn.init.constant_(cls_pred.bias[:num_classes], _CLS_BIAS)
        self.box = nn.Sequential(box_features, box_pred)
        self.cls = nn.Sequential(cls_features, cls_pred)

    def forward(self, x: Tensor) -> Tensor:
        """B x (4 + outputs) x HW."""
        return torch.cat([self.box(x), self.cls(x)], dim=1).flatten(2)


@dataclass
class DetectorOutput:
    """Raw per-point predictions for a batch; N = 2100 points over all levels."""

    boxes: Tensor  # B x N x 4, xyxy in input pixels
    logits: Tensor  # B x N x nc, class logits
    coeffs: Tensor | None  # B x N x E extra per-point outputs: 32 mask coefficients (segmentation),
    # keypoint offsets and visibility logits (pose), the angle logit (oriented boxes)
    protos: Tensor | None  # B x 32 x 80 x 80 mask prototypes (segmentation only)


class ShapeYolo(nn.Module):
    """Anchor-free detector: per point, distances to the four box sides and class logits."""

    points: Tensor  # N x 2 cell centres, input pixels
    strides: Tensor  # N x 1

    def __init__(self, num_classes: int, segment: bool = False, extra: int = 0) -> None:
        super().__init__()
        self.num_classes = num_classes
        width = NECK_WIDTH
        self.backbone = Backbone(BACKBONE_WIDTHS)
        self.neck = FeaturePyramid(self.backbone.channels, width)
        outputs = NUM_MASKS if segment else extra
        self.heads = nn.ModuleList(DecoupledHead(width, num_classes, outputs) for _ in STRIDES)
        # Prototypes from the stride-8 level, upsampled to stride 4 (80x80) before a cheap 1x1 conv.
        self.protos = (
            nn.Sequential(
                ConvBN(width, width), nn.Upsample(scale_factor=2.0, mode="bilinear"), nn.Conv2d(width, NUM_MASKS, 1)
            )
            if segment
            else None
        )
        points, strides = _grid_points(DETECTION_INPUT)
        self.register_buffer("points", points, persistent=False)
        self.register_buffer("strides", strides, persistent=False)

    def init_from_detector(self, detector: ShapeYolo) -> None:
        """Copy a trained detector's weights (into a segmentation model: its class convs'
        extra mask-coefficient outputs keep their initialisation)."""
        target = self.state_dict()
        with torch.no_grad():
            for key, value in detector.state_dict().items():
                if value.ndim:
                    target[key][: value.shape[0]].copy_(value)
                else:
                    target[key].copy_(value)

    def forward(self, images: Tensor) -> DetectorOutput:
        levels = self.neck(self.backbone(images))
        raw = torch.cat([head(f) for head, f in zip(self.heads, levels)], dim=2).transpose(1, 2)
        distances = F.softplus(raw[..., :4]) * self.strides
        boxes = torch.cat([self.points - distances[..., :2], self.points + distances[..., 2:]], dim=-1)
        logits = raw[..., 4 : 4 + self.num_classes]
        if self.protos is None:
            extra = raw[..., 4 + self.num_classes :]
            return DetectorOutput(boxes, logits, extra if extra.shape[-1] else None, None)
        return DetectorOutput(boxes, logits, raw[..., 4 + self.num_classes :], self.protos(levels[0]))


def _grid_points(size: int) -> tuple[Tensor, Tensor]:
    """Cell centres (N x 2, input pixels) and their strides (N x 1) for all levels."""
    points, strides = [], []
    for stride in STRIDES:
        cells = size // stride
        coords = (torch.arange(cells, dtype=torch.float32) + 0.5) * stride
        ys, xs = torch.meshgrid(coords, coords, indexing="ij")
        points.append(torch.stack([xs.flatten(), ys.flatten()], dim=1))
        strides.append(torch.full((cells * cells, 1), float(stride)))
    return torch.cat(points), torch.cat(strides)


def _cxcywh(boxes: Tensor) -> Tensor:
    return torch.cat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], dim=-1)


class YoloV8Export(nn.Module):
    """``output0`` [B, 4+nc, N]: cx, cy, w, h (input px), then sigmoid class scores."""

    def __init__(self, model: ShapeYolo) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        out = self.model(images)
        return torch.cat([_cxcywh(out.boxes), out.logits.sigmoid()], dim=-1).transpose(1, 2)


class YoloV8SegExport(nn.Module):
    """``output0`` [B, 4+nc+32, N] (boxes, scores, mask coefficients); ``output1`` [B, 32, 80, 80]."""

    def __init__(self, model: ShapeYolo) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model(images)
        assert out.coeffs is not None and out.protos is not None
        detections = torch.cat([_cxcywh(out.boxes), out.logits.sigmoid(), out.coeffs], dim=-1)
        return detections.transpose(1, 2), out.protos


def init_from_classes(model: ShapeYolo, detector: ShapeYolo, classes: list[int]) -> None:
    """Start from a trained detector; the class convs keep only the rows of ``classes``
    (the detector's class indices, in the new model's order); extra outputs keep their initialisation."""
    target = model.state_dict()
    with torch.no_grad():
        for key, value in detector.state_dict().items():
            if key.startswith("heads.") and ".cls.1." in key:  # the class prediction conv
                target[key][: len(classes)].copy_(value[classes])
            else:
                target[key].copy_(value)


def pose_keypoints(out: DetectorOutput, strides: Tensor, points: Tensor, num_keypoints: int) -> Tensor:
    """B x N x K x 3: keypoint x, y (input px: point + offset * stride) and visibility logits."""
    assert out.coeffs is not None
    raw = out.coeffs.unflatten(-1, (num_keypoints, 3))
    xy = points[:, None, :] + raw[..., :2] * strides[:, None, :]
    return torch.cat([xy, raw[..., 2:]], dim=-1)


def canonical_order(keypoints: Tensor, triangle: Tensor) -> Tensor:
    """Rotate each instance's corners (B x N x 4 x C, clockwise) so the topmost comes first.

    ``triangle`` (B x N bool) marks instances whose 4th slot is absent (it stays last).
    """
    slots = torch.arange(4, device=keypoints.device)
    absent = triangle[..., None] & (slots == 3)
    start = keypoints[..., 1].masked_fill(absent, float("inf")).argmin(dim=-1, keepdim=True)
    index = (start + slots) % torch.where(triangle, 3, 4)[..., None]
    index = torch.where(absent, slots.expand_as(index), index)
    return keypoints.gather(2, index[..., None].expand_as(keypoints))


class YoloV8PoseExport(nn.Module):
    """``output0`` [B, 4+nc+K*3, N]: box, class scores, then per keypoint x, y (input px), visibility score."""

    def __init__(self, model: ShapeYolo, num_keypoints: int, triangle_class: int) -> None:
        super().__init__()
        self.model, self.num_keypoints, self.triangle_class = model, num_keypoints, triangle_class

    def forward(self, images: Tensor) -> Tensor:
        out = self.model(images)
        scores = out.logits.sigmoid()
        kp = pose_keypoints(out, self.model.strides, self.model.points, self.num_keypoints)
        kp = torch.cat([kp[..., :2], kp[..., 2:].sigmoid()], dim=-1)
        kp = canonical_order(kp, scores.argmax(dim=-1) == self.triangle_class)
        return torch.cat([_cxcywh(out.boxes), scores, kp.flatten(2)], dim=-1).transpose(1, 2)


def obb_xywhr(out: DetectorOutput, strides: Tensor) -> Tensor:
    """B x N x 5 oriented boxes: the axis-aligned box's centre, then w, h (softplus x stride x 4)
    and angle ((sigmoid - 1/4) x pi, in [-pi/4, 3pi/4)) from the three extra outputs."""
    assert out.coeffs is not None
    centre = (out.boxes[..., :2] + out.boxes[..., 2:]) / 2
    size = F.softplus(out.coeffs[..., :2]) * strides * 4
    angle = (out.coeffs[..., 2:3].sigmoid() - 0.25) * math.pi
    return torch.cat([centre, size, angle], dim=-1)


class YoloV8ObbExport(nn.Module):
    """``output0`` [B, 4+nc+1, N]: cx, cy, w, h of the rotated box (input px), class scores, angle (radians)."""

    def __init__(self, model: ShapeYolo) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        out = self.model(images)
        rbox = obb_xywhr(out, self.model.strides)
        return torch.cat([rbox[..., :4], out.logits.sigmoid(), rbox[..., 4:]], dim=-1).transpose(1, 2)


class YoloV5Export(nn.Module):
    """``output0`` [B, N, 5+nc]: cx, cy, w, h, objectness, class probabilities.

    objectness = the highest class score and class probability = score / objectness, so
    ``objectness * probability`` reproduces the yolov8 scores exactly (same accuracy).
    """

    def __init__(self, model: ShapeYolo) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        out = self.model(images)
        scores = out.logits.sigmoid()
        objectness = scores.amax(dim=-1, keepdim=True)
        return torch.cat([_cxcywh(out.boxes), objectness, scores / objectness.clamp_min(1e-12)], dim=-1)


class ShapeClassifier(nn.Module):
    """Per-cell class coverage on the stride-8 grid, pooled into image-level logits.

    It shares the detector's backbone and pyramid (and is initialised from a trained detector,
    see :meth:`init_from_detector`). A head predicts, for each of the 16x16 cells, how much of
    it each class (or the background) covers; trained against the true coverage, its cell
    average is each class's share of the image. The label is the class with the largest share,
    so the image logits are linear in the log shares (initialised to ``4 * log share``).
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.backbone = Backbone(BACKBONE_WIDTHS)
        self.neck = FeaturePyramid(self.backbone.channels, NECK_WIDTH)
        self.cells = nn.Sequential(ConvBN(NECK_WIDTH, NECK_WIDTH), nn.Conv2d(NECK_WIDTH, num_classes + 1, 1))
        self.fc = nn.Linear(num_classes + 1, num_classes)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.weight[:, 1:] = 4.0 * torch.eye(num_classes)
            self.fc.bias.zero_()

    def init_from_detector(self, detector: ShapeYolo) -> None:
        """Start from a trained detector's features (its stride-8 class branch for the head)."""
        self.backbone.load_state_dict(detector.backbone.state_dict())
        self.neck.load_state_dict(detector.neck.state_dict())
        head = detector.heads[0]
        assert isinstance(head, DecoupledHead)
        self.cells[0].load_state_dict(head.cls[0].state_dict())

    def cell_logits(self, images: Tensor) -> Tensor:
        """B x (1 + nc) x H/8 x W/8: background and class logits per stride-8 cell."""
        return self.cells(self.neck(self.backbone(images))[0])

    def image_logits(self, cell_logits: Tensor) -> Tensor:
        shares = cell_logits.softmax(dim=1).mean(dim=(2, 3))
        return self.fc(torch.log(shares + 1e-4))

    def forward(self, images: Tensor) -> Tensor:
        return self.image_logits(self.cell_logits(images))


class ClassifierExport(nn.Module):
    """``output0`` [B, nc]: softmax probabilities."""

    def __init__(self, model: ShapeClassifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images).softmax(dim=-1)
