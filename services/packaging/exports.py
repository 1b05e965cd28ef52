"""What an ONNX export says about itself: its input and outputs and the exporter's metadata.

Read with the ``onnx`` package (the ``package`` extra), never ONNX Runtime: packaging needs no
runtime, and an environment holds one ONNX Runtime build at most (``cpu`` or ``gpu``).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from services.common.errors import ModelPackageError

Dim = int | str | None


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[Dim, ...]

    @property
    def per_image(self) -> tuple[Dim, ...]:
        return self.shape[1:]


@dataclass(frozen=True)
class ExportInfo:
    path: Path
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    metadata: dict[str, str]  # the raw metadata_props
    producer: str = ""
    parsed: dict[str, Any] = field(default_factory=dict)  # metadata values read as Python literals

    @property
    def ultralytics(self) -> bool:
        """Written by Ultralytics' exporter (it records the task and its own version)."""
        return "task" in self.metadata or "Ultralytics" in self.metadata.get("description", "") \
            or self.metadata.get("author", "").startswith("Ultralytics")


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _dim(d: Any) -> Dim:
    return d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) and d else None)


def _tensors(values: Any, skip: frozenset[str] = frozenset()) -> tuple[Tensor, ...]:
    """Graph inputs or outputs as ``Tensor``s (dims: int, a symbolic name, or None), initializers left out."""
    tensors = []
    for value in values:
        if value.name in skip:
            continue
        dims = value.type.tensor_type.shape.dim if value.type.HasField("tensor_type") else ()
        tensors.append(Tensor(value.name, tuple(
            _dim(d.dim_value if d.HasField("dim_value") else d.dim_param) for d in dims)))
    return tuple(tensors)


def read_export(path: Path) -> ExportInfo:
    """Read the file with the ``onnx`` package and its checker (a well-formed model); no runtime needed.
    The weights themselves (external data included) are not read: only the graph and its metadata."""
    if not path.is_file():
        raise ModelPackageError(f"{path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf and the checker raise several unrelated types
        detail = str(exc).replace(str(path), "<file>")
        raise ModelPackageError(f"{path} is not an ONNX model the onnx checker accepts: {detail[:300]}") from None
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    graph = model.graph
    return ExportInfo(
        path=path,
        inputs=_tensors(graph.input, frozenset(init.name for init in graph.initializer)),
        outputs=_tensors(graph.output),
        metadata=metadata,
        producer=f"{model.producer_name} {model.producer_version}".strip(),  # "pytorch 2.5.1"
        parsed={k: _literal(v) for k, v in metadata.items()},
    )
