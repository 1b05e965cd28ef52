"""A request's typed inputs, checked against what the model declares (``ModelSpec.declared_inputs``).

The image goes in ``InferRequest.image`` (the model's first image input) or by its name; every other input
(texts, point and box prompts, tensors) by the name the package declares. An undeclared input, one of the
wrong kind, a missing required one or too many values is the caller's mistake: INVALID_ARGUMENT naming the
input. Values stay in original-image pixels; a task maps them to its model's input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from services.common.errors import InvalidArgument, InvalidImage
from services.common.messages import quoted
from services.common.model_spec import InputDecl, InputKind, ModelSpec
from services.model_worker.images import ImageInput

#: The most values of one input a request may carry when the model declares no ``max_items``.
DEFAULT_MAX_ITEMS = 64
MAX_TEXT_CHARS = 10_000
MAX_TENSOR_BYTES = 64 * 1024 * 1024
TENSOR_TYPES = {"FP32": np.float32, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32, "UINT8": np.uint8,
                "BOOL": np.bool_}


@dataclass(frozen=True)
class Points:
    """Point prompts: (N, 2) float32 x, y in original pixels; (N,) bool, True for a positive point."""

    xy: np.ndarray
    positive: np.ndarray


@dataclass(frozen=True)
class Boxes:
    """Box prompts: (N, 4) float32 x0, y0, x1, y1 in original pixels."""

    xyxy: np.ndarray


Value = ImageInput | tuple[str, ...] | Points | Boxes | np.ndarray


@dataclass(frozen=True)
class Inputs:
    """A request's inputs by declared name, validated."""

    values: Mapping[str, Value] = field(default_factory=dict)
    image_name: str | None = None  # the model's first image input

    @property
    def image(self) -> ImageInput | None:
        value = self.values.get(self.image_name) if self.image_name else None
        return value if isinstance(value, ImageInput) else None

    def texts(self, name: str) -> tuple[str, ...] | None:
        value = self.values.get(name)
        return value if isinstance(value, tuple) else None

    def points(self, name: str) -> Points | None:
        value = self.values.get(name)
        return value if isinstance(value, Points) else None

    def boxes(self, name: str) -> Boxes | None:
        value = self.values.get(name)
        return value if isinstance(value, Boxes) else None

    def tensor(self, name: str) -> np.ndarray | None:
        value = self.values.get(name)
        return value if isinstance(value, np.ndarray) else None


def _limit(decl: InputDecl) -> int:
    return decl.max_items or DEFAULT_MAX_ITEMS


def check(spec: ModelSpec, values: dict[str, tuple[InputKind, Value, int]], model_id: str) -> Inputs:
    """Validate ``values`` (name -> (kind, value, item count)) against the model's declaration."""
    declared = {d.name: d for d in spec.declared_inputs}
    takes = ", ".join(f"{d.name} ({d.kind.value})" for d in spec.declared_inputs)
    for name, (kind, _, count) in values.items():
        decl = declared.get(name)
        if decl is None:
            raise InvalidArgument(f"input {quoted(name)} is not an input of model {model_id!r}, which takes: {takes}")
        if decl.kind != kind:
            raise InvalidArgument(f"input {quoted(name)} of model {model_id!r} is {decl.kind.value}, "
                                  f"not {kind.value}")
        if decl.kind in (InputKind.TEXTS, InputKind.POINTS, InputKind.BOXES):
            if count == 0:
                raise InvalidArgument(f"input {quoted(name)} is empty: send at least one value, or leave it out")
            if count > _limit(decl):
                raise InvalidArgument(f"input {quoted(name)} has {count} values; model {model_id!r} takes at most "
                                      f"{_limit(decl)} in one request (split it)")
    missing = [d for d in spec.declared_inputs if d.required and d.name not in values]
    if missing and missing[0].kind == InputKind.IMAGE:
        raise InvalidImage("the request carries no image: set image.encoded, image.url or image.raw")
    if missing:
        raise InvalidArgument(f"model {model_id!r} needs input {quoted(missing[0].name)}")
    image_name = next((d.name for d in spec.declared_inputs if d.kind == InputKind.IMAGE), None)
    return Inputs({name: value for name, (_, value, _) in values.items()}, image_name)


def texts(values: list[str], name: str) -> tuple[str, ...]:
    empty = [i for i, v in enumerate(values) if not v.strip()]
    if empty:
        raise InvalidArgument(f"input {quoted(name)}: text {empty[0]} is empty; send some words to embed")
    if any(len(v) > MAX_TEXT_CHARS for v in values):
        raise InvalidArgument(f"input {quoted(name)}: each text may have at most {MAX_TEXT_CHARS} characters")
    return tuple(values)


def points(xy: list[tuple[float, float]], positive: list[bool], name: str) -> Points:
    array = np.asarray(xy, np.float32).reshape(-1, 2)
    if not np.isfinite(array).all():
        raise InvalidArgument(f"input {quoted(name)}: point coordinates must be finite numbers")
    return Points(array, np.asarray(positive, bool))


def boxes(xywh: list[tuple[float, float, float, float]], name: str) -> Boxes:
    """Centre x, y, width, height -> x0, y0, x1, y1."""
    array = np.asarray(xywh, np.float32).reshape(-1, 4)
    if not np.isfinite(array).all() or (array[:, 2:] <= 0).any():
        raise InvalidArgument(f"input {quoted(name)}: boxes need finite coordinates and a positive width and height")
    centre, size = array[:, :2], array[:, 2:]
    return Boxes(np.concatenate([centre - size / 2, centre + size / 2], axis=1))


def tensor(datatype: str, shape: list[int], data: bytes, name: str) -> np.ndarray:
    dtype = TENSOR_TYPES.get(datatype)
    if dtype is None:
        raise InvalidArgument(f"input {quoted(name)}: datatype {quoted(datatype)} is not one of {sorted(TENSOR_TYPES)}")
    if any(d < 0 for d in shape) or len(data) > MAX_TENSOR_BYTES:
        raise InvalidArgument(f"input {quoted(name)}: a tensor needs a shape of non-negative sizes and at most "
                              f"{MAX_TENSOR_BYTES} bytes")
    count = int(np.prod(shape)) if shape else 1
    if count * np.dtype(dtype).itemsize != len(data):
        raise InvalidArgument(f"input {quoted(name)}: shape {list(shape)} of {datatype} needs "
                              f"{count * np.dtype(dtype).itemsize} bytes, got {len(data)}")
    return np.frombuffer(data, dtype).reshape(shape)
