"""What an ONNX export says about itself: its input and outputs and the exporter's metadata."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def read_export(path: Path) -> ExportInfo:
    """Open the file with ONNX Runtime (which also proves it is a model it can run)."""
    import onnxruntime as ort  # noqa: PLC0415 - a server-side dependency, only needed here

    if not path.is_file():
        raise ModelPackageError(f"{path} does not exist")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises several unrelated types
        raise ModelPackageError(f"{path} is not an ONNX model ONNX Runtime can open: {str(exc)[:300]}") from None
    meta = session.get_modelmeta()
    metadata = dict(meta.custom_metadata_map)
    return ExportInfo(
        path=path,
        inputs=tuple(Tensor(i.name, tuple(_dim(d) for d in i.shape)) for i in session.get_inputs()),
        outputs=tuple(Tensor(o.name, tuple(_dim(d) for d in o.shape)) for o in session.get_outputs()),
        metadata=metadata,
        producer=f"{meta.producer_name} {getattr(meta, 'version', '')}".strip(),
        parsed={k: _literal(v) for k, v in metadata.items()},
    )
