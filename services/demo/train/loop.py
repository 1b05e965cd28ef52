"""Training loops (AdamW, linear warm-up then cosine decay, random flips/rotations by 90 deg)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from services.demo.train.data import (
    ClassificationData,
    CornerData,
    DetectionData,
    dihedral,
    dihedral_boxes,
    dihedral_points,
)
from services.demo.train.geometry_loss import obb_loss, pose_loss
from services.demo.train.loss import Targets, detection_loss
from services.demo.train.models import DETECTION_INPUT, ShapeClassifier, ShapeYolo

Log = Callable[[str], None]


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int = 32
    lr: float = 6e-3
    weight_decay: float = 5e-4
    warmup_steps: int = 60
    final_lr_fraction: float = 0.02


def _optimizer(model: nn.Module, schedule: Schedule, steps: int) -> tuple[torch.optim.Optimizer, object]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)

    def factor(step: int) -> float:
        if step < schedule.warmup_steps:
            return (step + 1) / schedule.warmup_steps
        progress = (step - schedule.warmup_steps) / max(1, steps - schedule.warmup_steps)
        low = schedule.final_lr_fraction
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _batches(count: int, schedule: Schedule, generator: torch.Generator) -> Iterator[tuple[int, Tensor, Tensor]]:
    """(epoch, sample indices, dihedral transform per sample); the last short batch is dropped."""
    for epoch in range(schedule.epochs):
        order = torch.randperm(count, generator=generator)
        for start in range(0, count - schedule.batch_size + 1, schedule.batch_size):
            indices = order[start : start + schedule.batch_size]
            yield epoch, indices, torch.randint(8, (len(indices),), generator=generator)


def _channels_last(model: nn.Module) -> None:
    """Weights in channels-last layout: faster convolutions on CPU."""
    model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs lack memory_format


def _to_float(images: list[Tensor]) -> Tensor:
    return (torch.stack(images).float() / 255.0).contiguous(memory_format=torch.channels_last)


def _run(
    model: nn.Module,
    schedule: Schedule,
    count: int,
    seed: int,
    step_loss: Callable[[Tensor, Tensor], tuple[Tensor, dict[str, float]]],
    log: Log,
    frozen_norm: bool = False,
) -> None:
    """Shared loop: ``step_loss(indices, transforms)`` returns the batch loss and its parts.

    ``frozen_norm`` keeps every BatchNorm in eval mode (fine-tuning with the statistics it has)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    steps = schedule.epochs * (count // schedule.batch_size)
    optimizer, scheduler = _optimizer(model, schedule, steps)
    model.train()
    if frozen_norm:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
    started = time.monotonic()
    totals: dict[str, float] = {}
    seen = 0
    current = 0
    for epoch, indices, transforms in _batches(count, schedule, generator):
        if epoch != current:
            _log_epoch(log, current, schedule.epochs, totals, seen, started)
            totals, seen, current = {}, 0, epoch
        loss, parts = step_loss(indices, transforms)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        scheduler.step()  # type: ignore[attr-defined]
        for key, value in parts.items():
            totals[key] = totals.get(key, 0.0) + value
        seen += 1
    _log_epoch(log, current, schedule.epochs, totals, seen, started)
    model.eval()


def _log_epoch(log: Log, epoch: int, epochs: int, totals: dict[str, float], seen: int, started: float) -> None:
    parts = " ".join(f"{k}={v / max(seen, 1):.4f}" for k, v in totals.items())
    log(f"  epoch {epoch + 1}/{epochs} {parts} ({time.monotonic() - started:.0f}s)")


def train_detector(model: ShapeYolo, data: DetectionData, schedule: Schedule, seed: int, log: Log) -> None:
    """Train a detector (with masks when ``data.masks`` is set) on letterboxed scenes."""
    _channels_last(model)
    points, strides = model.points, model.strides

    def step_loss(indices: Tensor, transforms: Tensor) -> tuple[Tensor, dict[str, float]]:
        images, targets = [], []
        for i, k in zip(indices.tolist(), transforms.tolist()):
            images.append(dihedral(data.images[i], k))
            masks = dihedral(data.masks[i], k) if data.masks is not None else None
            targets.append(Targets(dihedral_boxes(data.boxes[i], k, DETECTION_INPUT), data.labels[i], masks))
        return detection_loss(model(_to_float(images)), targets, points, strides)

    _run(model, schedule, len(data.boxes), seed, step_loss, log)


def _corner_targets(data: CornerData, i: int, k: int, task: str) -> Targets:
    """Targets of scene ``i`` under dihedral ``k``: pose (rectangles and triangles with their corners,
    clockwise) or obb (rectangles: the corners' box and cx, cy, w, h, angle)."""
    counts = data.counts[i]
    keep = counts > 0 if task == "pose" else counts == 4
    corners = dihedral_points(data.corners[i][keep], k, DETECTION_INPUT)
    counts = counts[keep]
    if bin(k).count("1") % 2:  # an odd number of flips turns clockwise into anticlockwise
        reverse = torch.where(counts[:, None] == 4, torch.tensor([3, 2, 1, 0]), torch.tensor([2, 1, 0, 3]))
        corners = corners.gather(1, reverse[..., None].expand_as(corners))
    if task == "pose":
        present = (torch.arange(4) < counts[:, None]).float()
        boxes = dihedral_boxes(data.boxes[i][keep], k, DETECTION_INPUT)
        return Targets(boxes, data.labels[i][keep] - 1, None, torch.cat([corners, present[..., None]], dim=-1))
    boxes = torch.cat([corners.amin(dim=1), corners.amax(dim=1)], dim=-1)
    edge_a, edge_b = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 1]
    rbox = torch.stack([*corners.mean(dim=1).unbind(-1), edge_a.norm(dim=-1), edge_b.norm(dim=-1),
                        torch.atan2(edge_a[:, 1], edge_a[:, 0])], dim=-1)
    return Targets(boxes, torch.zeros(len(boxes), dtype=torch.int64), None, rbox)


def train_geometry(model: ShapeYolo, data: CornerData, task: str, schedule: Schedule, seed: int, log: Log) -> None:
    """Fine-tune a keypoint (``pose``) or oriented-box (``obb``) model from a detector on letterboxed
    scenes, its BatchNorms frozen (the detector may come back from its ONNX export, where they are folded)."""
    _channels_last(model)
    points, strides = model.points, model.strides
    extra = pose_loss(points, strides, 4) if task == "pose" else obb_loss(strides)

    def step_loss(indices: Tensor, transforms: Tensor) -> tuple[Tensor, dict[str, float]]:
        pairs = list(zip(indices.tolist(), transforms.tolist()))
        images = [dihedral(data.images[i], k) for i, k in pairs]
        targets = [_corner_targets(data, i, k, task) for i, k in pairs]
        return detection_loss(model(_to_float(images)), targets, points, strides, extra)

    _run(model, schedule, len(data.boxes), seed, step_loss, log, frozen_norm=True)


def train_classifier(model: ShapeClassifier, data: ClassificationData, schedule: Schedule, seed: int, log: Log) -> None:
    """Cross-entropy on the image label plus soft cross-entropy on every cell's coverage."""
    _channels_last(model)

    def step_loss(indices: Tensor, transforms: Tensor) -> tuple[Tensor, dict[str, float]]:
        pairs = list(zip(indices.tolist(), transforms.tolist()))
        batch = _to_float([dihedral(data.images[i], k) for i, k in pairs])
        coverage = torch.stack([dihedral(data.coverage[i], k) for i, k in pairs]).float()
        cells = model.cell_logits(batch)
        logits = model.image_logits(cells)
        target = data.labels[indices]
        image_loss = F.cross_entropy(logits, target)
        cell_loss = -(coverage * cells.log_softmax(dim=1)).sum(dim=1).mean()
        accuracy = (logits.argmax(dim=1) == target).float().mean()
        return image_loss + cell_loss, {"ce": image_loss.item(), "cells": cell_loss.item(), "acc": accuracy.item()}

    _run(model, schedule, len(data.labels), seed, step_loss, log)
