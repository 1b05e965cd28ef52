"""The model package format (``model.json``), shared by trainer, registry and worker.

A model package is a directory holding ``model.onnx`` and ``model.json``; see
``docs/model-package.md``. ``ModelSpec`` is the validated form of ``model.json``:
everything a worker needs to pre-process, run and post-process a model.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from services.common.errors import ModelPackageError
from services.common.messages import summarize
from services.common.layouts import LAYOUTS, LayoutParams, TaskType
from services.tasks import registry as tasks

__all__ = ["TaskType", "ModelSpec", "InputSpec", "InputDecl", "InputKind", "ResizeMode", "Interpolation", "Anchor",
           "ColorOrder"]

FORMAT_VERSION = 1
MODEL_JSON = "model.json"


class ResizeMode(str, enum.Enum):
    LETTERBOX = "letterbox"
    STRETCH = "stretch"
    CENTER_CROP = "center-crop"
    # torchvision's Resize(shortest side) then CenterCrop (OpenCLIP's and timm's eval transform): the image
    # is resized first, its shorter side to the input's, then the centre cut (``center-crop`` cuts first).
    RESIZE_CENTER_CROP = "resize-center-crop"


class Interpolation(str, enum.Enum):
    LINEAR = "linear"
    AREA = "area"
    CUBIC = "cubic"
    LANCZOS = "lanczos"
    NEAREST = "nearest"
    # PIL's antialiased filters, as torchvision resizes a PIL image (OpenCLIP: bicubic; SAM: bilinear).
    PIL_BILINEAR = "pil-bilinear"
    PIL_BICUBIC = "pil-bicubic"


class Anchor(str, enum.Enum):
    """Where a letterboxed image sits in the padded input."""

    CENTER = "center"
    TOP_LEFT = "top-left"


class ColorOrder(str, enum.Enum):
    RGB = "rgb"
    BGR = "bgr"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputSpec(_Frozen):
    """How an image becomes the model's input tensor: x = (pixel * scale - mean) / std."""

    name: str | None = None  # None: the ONNX file's only input
    width: int = Field(gt=0, le=8192)
    height: int = Field(gt=0, le=8192)
    resize_mode: ResizeMode = ResizeMode.LETTERBOX
    interpolation: Interpolation = Interpolation.LINEAR
    anchor: Anchor = Anchor.CENTER
    color_order: ColorOrder = ColorOrder.RGB
    pad_value: int = Field(default=114, ge=0, le=255)
    scale: float = Field(default=1.0 / 255.0, gt=0)
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    # True: a letterbox's padding is 0 after normalisation (SAM pads the normalised image), not pad_value.
    pad_normalized: bool = False

    @model_validator(mode="after")
    def _std_positive(self) -> InputSpec:
        if any(s <= 0 for s in self.std):
            raise ValueError("input.std values must be positive")
        if self.resize_mode == ResizeMode.RESIZE_CENTER_CROP and self.width != self.height:
            raise ValueError("input.resize_mode resize-center-crop needs a square input (width == height)")
        return self


class Defaults(_Frozen):
    confidence: float = Field(default=0.25, ge=0.0, le=1.0)
    iou_threshold: float = Field(default=0.45, ge=0.0, le=1.0)
    max_detections: int = Field(default=100, gt=0, le=10000)
    class_agnostic_nms: bool = False
    top_k: int | None = Field(default=None, gt=0)  # classification: answer only the best k classes


class KeypointSpec(_Frozen):
    """Keypoint models: the points' names (in output order), the edges drawn between them."""

    names: tuple[str, ...] = Field(min_length=1)
    skeleton: tuple[tuple[int, int], ...] = ()
    dims: Literal[2, 3] = 3  # x, y and (3) a visibility score per point

    @model_validator(mode="after")
    def _edges_in_range(self) -> KeypointSpec:
        bad = [list(e) for e in self.skeleton if not all(0 <= i < len(self.names) for i in e)]
        if bad:
            raise ValueError(f"keypoints.skeleton edges {bad} name points outside 0..{len(self.names) - 1}")
        return self


class Weights(_Frozen):
    file: str = "model.onnx"
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _plain_file_name(self) -> Weights:
        if "/" in self.file or "\\" in self.file or self.file in ("", ".", ".."):
            raise ValueError("weights.file must be a plain file name inside the package")
        return self


class InputKind(str, enum.Enum):
    """What a model input holds (the fleet.v1 InputValue field it comes in)."""

    IMAGE = "image"
    TEXTS = "texts"
    POINTS = "points"
    BOXES = "boxes"
    TENSOR = "tensor"


class InputDecl(_Frozen):
    """One input a model takes (``inputs`` in model.json; a model that declares none takes one image)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
    kind: InputKind
    required: bool = True
    max_items: int = Field(default=0, ge=0, le=4096)  # texts, points, boxes in one request (0: no limit of its own)


#: What a model without an ``inputs`` declaration takes.
IMAGE_ONLY = (InputDecl(name="image", kind=InputKind.IMAGE),)
_GRAPH_NAME = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"


class Batch(_Frozen):
    max_batch_size: int = Field(default=1, ge=1, le=1024)


class ModelSpec(_Frozen):
    """Validated ``model.json``."""

    format_version: int = FORMAT_VERSION
    name: str = ""
    task_type: str  # a registered task's name (services.tasks): a TaskType value or a plug-in's
    model_type: str
    class_names: tuple[str, ...] = ()
    multi_label: bool = False
    input: InputSpec
    outputs: tuple[str, ...] = ()  # empty: the ONNX file's outputs, in order
    batch: Batch = Batch()
    defaults: Defaults = Defaults()
    keypoints: KeypointSpec | None = None
    weights: Weights  # the model's (first) ONNX graph, named "model"
    inputs: tuple[InputDecl, ...] = ()  # empty: one image (IMAGE_ONLY)
    graphs: dict[str, Weights] = Field(default_factory=dict)  # more ONNX graphs, by name (an encoder's decoder)
    assets: dict[str, Weights] = Field(default_factory=dict)  # other files the task reads (a tokenizer's vocabulary)
    options: dict[str, Any] = Field(default_factory=dict)  # the task's own settings (its module documents them)
    provenance: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)

    @field_validator("task_type", mode="before")
    @classmethod
    def _task_name(cls, v: object) -> object:
        return v.value if isinstance(v, enum.Enum) else v

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format_version {self.format_version} is not supported (expected {FORMAT_VERSION})")
        task = tasks.find(self.task_type)
        if task is None:
            known = ", ".join(sorted(t.name for t in tasks.all_tasks()))
            raise ValueError(f"task_type {self.task_type!r} is not a task of this fleet ({known})")
        problems = []
        if task.needs_classes and not self.class_names:
            problems.append("class_names: at least one is needed")
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            problems.append(f"inputs: names must be unique, got {names}")
        bad = [g for g in [*self.graphs, *self.assets] if not re.fullmatch(_GRAPH_NAME, g) or g == "model"]
        if bad:
            problems.append(f"graphs/assets names {bad} must be identifiers other than 'model'")
        layout = LAYOUTS.get(self.model_type)
        if layout is None:
            problems.append(f"model_type {self.model_type!r} is not one of the {summarize(sorted(LAYOUTS), 'model type')}")
        elif layout.task != self.task_type:
            problems.append(f"model_type {self.model_type!r} serves {layout.task}, not {self.task_type}")
        if problems:
            raise ValueError("; ".join(problems))
        assert layout is not None
        if self.outputs and len(self.outputs) != layout.outputs:
            raise ValueError(f"{self.model_type} needs {layout.outputs} output name(s), got {list(self.outputs)}")
        if (self.task_type == TaskType.KEYPOINT_DETECTION) != (self.keypoints is not None):
            raise ValueError("keypoints (names, skeleton) are required for keypoint models and only for them")
        return self

    @property
    def declared_inputs(self) -> tuple[InputDecl, ...]:
        return self.inputs or IMAGE_ONLY

    @property
    def files(self) -> dict[str, Weights]:
        """Every file of the package a worker fetches: "model", the other graphs, the assets."""
        return {"model": self.weights, **self.graphs, **self.assets}

    @property
    def sha256(self) -> str:
        """The model's version: its weights' sha256, or, with several files, the sha256 of all of theirs."""
        if not self.graphs and not self.assets:
            return self.weights.sha256
        digest = hashlib.sha256()
        for name, weights in sorted(self.files.items()):
            digest.update(f"{name}={weights.sha256};".encode())
        return digest.hexdigest()

    def layout_params(self) -> LayoutParams:
        kp = self.keypoints
        return LayoutParams(self.num_classes, self.input.width, self.input.height,
                            len(kp.names) if kp else 0, kp.dims if kp else 3)

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
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: "
                + ("unknown key (not part of the model.json format; check its spelling)"
                   if err["type"] == "extra_forbidden" else err["msg"])
                for err in exc.errors()
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
