"""The model package format (``model.json``), shared by trainer, registry and worker.

A model package is a directory holding ``model.onnx`` and ``model.json``; see
``docs/model-package.md``. ``ModelSpec`` is the validated form of ``model.json``:
everything a worker needs to pre-process, run and post-process a model.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.common.errors import ModelPackageError

FORMAT_VERSION = 1
MODEL_JSON = "model.json"


class TaskType(str, enum.Enum):
    OBJECT_DETECTION = "object-detection"
    INSTANCE_SEGMENTATION = "instance-segmentation"
    CLASSIFICATION = "classification"


class ResizeMode(str, enum.Enum):
    LETTERBOX = "letterbox"
    STRETCH = "stretch"


class ColorOrder(str, enum.Enum):
    RGB = "rgb"
    BGR = "bgr"


# model_type -> the task it serves. The post-processing for each lives in
# services.model_worker.processing.postprocess.
MODEL_TYPES: dict[str, TaskType] = {
    "yolov8": TaskType.OBJECT_DETECTION,
    "yolov5": TaskType.OBJECT_DETECTION,
    "yolov8-seg": TaskType.INSTANCE_SEGMENTATION,
    "yolov8-cls": TaskType.CLASSIFICATION,
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class InputSpec(_Frozen):
    """How an image becomes the model's input tensor: x = (pixel * scale - mean) / std."""

    name: str = "images"
    width: int = Field(gt=0, le=8192)
    height: int = Field(gt=0, le=8192)
    resize_mode: ResizeMode = ResizeMode.LETTERBOX
    color_order: ColorOrder = ColorOrder.RGB
    pad_value: int = Field(default=114, ge=0, le=255)
    scale: float = Field(default=1.0 / 255.0, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @model_validator(mode="after")
    def _std_positive(self) -> InputSpec:
        if any(s <= 0 for s in self.std):
            raise ValueError("input.std values must be positive")
        return self


class Defaults(_Frozen):
    confidence: float = Field(default=0.25, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    max_detections: int = Field(default=100, gt=0, le=10000)


class Weights(_Frozen):
    file: str = "model.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _plain_file_name(self) -> Weights:
        if "/" in self.file or "\\" in self.file or self.file in ("", ".", ".."):
            raise ValueError("weights.file must be a plain file name inside the package")
        return self


class Batch(_Frozen):
    max_batch_size: int = Field(default=1, ge=1, le=1024)


class ModelSpec(_Frozen):
    """Validated ``model.json``."""

    format_version: int = FORMAT_VERSION
    name: str = ""
    task_type: TaskType
    model_type: str
    class_names: tuple[str, ...] = Field(min_length=1)
    multi_label: bool = False
    input: InputSpec
    outputs: tuple[str, ...] = ("output0",)
    batch: Batch = Batch()
    defaults: Defaults = Defaults()
    weights: Weights
    provenance: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format_version {self.format_version} is not supported (expected {FORMAT_VERSION})")
        task = MODEL_TYPES.get(self.model_type)
        if task is None:
            raise ValueError(f"model_type {self.model_type!r} is not supported; use one of {sorted(MODEL_TYPES)}")
        if task != self.task_type:
            raise ValueError(f"model_type {self.model_type!r} serves {task.value}, not {self.task_type.value}")
        needed = 2 if self.task_type == TaskType.INSTANCE_SEGMENTATION else 1
        if len(self.outputs) != needed:
            raise ValueError(f"{self.model_type} needs {needed} output name(s), got {list(self.outputs)}")
        return self

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def from_json(cls, data: dict[str, Any], *, source: str = "model.json") -> ModelSpec:
        """Validate a parsed ``model.json``; raise ModelPackageError with every problem found."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
            )
            raise ModelPackageError(f"{source} is invalid: {problems}") from None

    @classmethod
    def from_package(cls, package_dir: str | Path) -> ModelSpec:
        """Read and validate ``<package_dir>/model.json``."""
        path = Path(package_dir) / MODEL_JSON
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelPackageError(f"{path} does not exist: a model package needs a model.json") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelPackageError(f"{path} could not be read as JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ModelPackageError(f"{path} must hold a JSON object")
        return cls.from_json(data, source=str(path))
