"""Output layouts (``model_type``): what each one serves and which ONNX outputs it expects.

The facts every part of the fleet shares: ``model.json`` validation (``model_spec``), the worker's
load-time check, and ``fleet package``, which infers a layout from an export's output shapes. Each
task declares its layouts (``services.tasks``) and registers them here; a layout names the worker's
decoder of its raw outputs (``decoder``, imported by the worker only). Shapes exclude the batch
dimension; ``None`` matches any size.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Shape = Sequence[int | str | None]
Expected = list[tuple[int | None, ...]]


class TaskType(str, enum.Enum):
    """The built-in tasks' names (``services.tasks``); plug-ins add tasks by name only."""

    OBJECT_DETECTION = "object-detection"
    INSTANCE_SEGMENTATION = "instance-segmentation"
    CLASSIFICATION = "classification"
    KEYPOINT_DETECTION = "keypoint-detection"
    ORIENTED_DETECTION = "oriented-detection"


@dataclass(frozen=True)
class LayoutParams:
    """What the expected shapes depend on."""

    num_classes: int
    width: int
    height: int
    num_keypoints: int = 0
    keypoint_dims: int = 3
    num_masks: int | None = None  # from the prototypes' shape; None: not known yet


@dataclass(frozen=True)
class Layout:
    name: str
    task: str  # the task's name (a TaskType value for the built-in tasks)
    outputs: int
    summary: str
    expected: Callable[[LayoutParams], Expected]
    end_to_end: bool = False  # NMS done inside the model: [K, 6 + extra] rows
    #: "module:function" decoding one image's raw outputs into the task's result (the worker's, imported there)
    decoder: str = ""
    #: the first output's shape gives the number of mask prototypes (instance segmentation)
    prototypes: bool = False

    def check(self, params: LayoutParams, shapes: Sequence[Shape]) -> str | None:
        """None when ``shapes`` fit this layout, else what was expected (for an error message)."""
        if self.prototypes and len(shapes) == 2 and shapes[1]:
            first = shapes[1][0]
            params = LayoutParams(**{**params.__dict__, "num_masks": first if isinstance(first, int) else None})
        expected = self.expected(params)
        fits = len(shapes) == len(expected) and all(
            len(got) == len(want) and all(not isinstance(g, int) or w is None or g == w for g, w in zip(got, want))
            for got, want in zip(shapes, expected)
        )
        return None if fits else str([list(e) for e in expected])


#: Every layout by name, registered by the tasks (``services.tasks.registry.register``).
LAYOUTS: dict[str, Layout] = {}


def register_layout(layout: Layout) -> None:
    existing = LAYOUTS.get(layout.name)
    if existing is not None and existing != layout:
        raise ValueError(f"model type {layout.name!r} is already registered for task {existing.task!r}")
    LAYOUTS[layout.name] = layout


def protos_shape(p: LayoutParams) -> tuple[int | None, ...]:
    """Mask prototypes: [nm, H/4, W/4]."""
    return (p.num_masks, p.height // 4, p.width // 4)


def with_masks(p: LayoutParams, base: int) -> int | None:
    """A row of ``base`` values plus the mask coefficients (unknown until the prototypes are seen)."""
    return base + p.num_masks if p.num_masks else None


def keypoint_values(p: LayoutParams) -> int:
    return p.num_keypoints * p.keypoint_dims
