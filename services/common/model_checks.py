"""Does an ONNX graph's declared input and outputs fit a model.json? No runtime needed.

The worker runs these on the session it opened (``services.model_worker.runtime``), and
``fleet package`` on the file as the ``onnx`` package reads it, so a package that passes one
passes the other. Dimensions are ints, symbolic names (str) or None (unknown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from services.common.errors import ModelLoadError
from services.common.layouts import LAYOUTS, Shape
from services.common.model_spec import ModelSpec


def check_input(spec: ModelSpec, name: str, shape: Sequence[int | str | None], metadata: Mapping[str, str],
                count: int = 1) -> int | None:
    """The input's fixed batch size, if any; ModelLoadError unless it is [batch, 3, height, width] as
    model.json says (``count``: how many inputs the graph has; a vision package has one)."""
    if count != 1:
        raise ModelLoadError(f"the model has {count} inputs; a vision model package needs exactly one")
    if spec.input.name is not None and name != spec.input.name:
        raise ModelLoadError(f"the model's input is named {name!r}, but model.json says {spec.input.name!r}")
    shape = list(shape)
    want = [None, 3, spec.input.height, spec.input.width]
    if len(shape) != 4 or any(isinstance(g, int) and w is not None and g != w for g, w in zip(shape, want)):
        raise ModelLoadError(
            f"the model's input shape is {shape}, but model.json describes [batch, 3, {spec.input.height}, "
            f"{spec.input.width}]"
        )
    if not all(isinstance(d, int) for d in shape[2:]):
        check_export_size(spec, metadata)
    return shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None


def export_size(metadata: Mapping[str, str]) -> tuple[int, int] | None:
    """(height, width) the exporter recorded (Ultralytics' ``imgsz``: "[640, 640]" or "640"), if any."""
    raw = metadata.get("imgsz")
    if not raw:
        return None
    numbers = [int(n) for n in raw.replace("[", " ").replace("]", " ").replace(",", " ").split() if n.isdigit()]
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    return (numbers[0], numbers[1]) if len(numbers) == 2 else None


def check_export_size(spec: ModelSpec, metadata: Mapping[str, str]) -> None:
    """A dynamic-size export runs at any size, but it was trained and exported for its imgsz."""
    size = export_size(metadata)
    if size is not None and size != (spec.input.height, spec.input.width):
        raise ModelLoadError(
            f"the model was exported with imgsz {list(size)} (height, width) but model.json says "
            f"{spec.input.height}x{spec.input.width}; set input.height and input.width to the export's size"
        )


def output_names(spec: ModelSpec, available: list[str]) -> list[str]:
    """model.json's outputs, or the ONNX file's first outputs in order (as many as the layout reads)."""
    if spec.outputs:
        missing = [n for n in spec.outputs if n not in available]
        if missing:
            raise ModelLoadError(f"the model has outputs {available}, but model.json names {list(spec.outputs)}")
        return list(spec.outputs)
    needed = LAYOUTS[spec.model_type].outputs
    if len(available) < needed:
        raise ModelLoadError(f"model_type {spec.model_type!r} reads {needed} outputs; the model has {available}")
    return available[:needed]


def check_output_shapes(spec: ModelSpec, shapes: Sequence[Shape]) -> None:
    """Raise ModelLoadError unless per-image output shapes (batch removed; symbolic sizes match
    anything) fit the declared model type."""
    expected = LAYOUTS[spec.model_type].check(spec.layout_params(), shapes)
    if expected is not None:
        raise ModelLoadError(
            f"model outputs {[list(s) for s in shapes]} (batch dimension removed) do not match model_type "
            f"{spec.model_type!r} with {spec.num_classes} classes, which expects {expected} "
            "(None = any size); check model_type, class_names and keypoints in model.json"
        )
