"""ONNX export (legacy TorchScript exporter, opset 17, dynamic batch dimension)."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

OPSET = 17
INPUT_NAME = "images"
BATCH_DIM = "batch"


def export_onnx(wrapper: nn.Module, input_size: int, path: Path, output_names: tuple[str, ...]) -> None:
    """Export ``wrapper`` for [B, 3, input_size, input_size] float32 inputs and check the result."""
    wrapper.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]  # stubs lack memory_format
    wrapper.eval()
    dummy = torch.zeros(1, 3, input_size, input_size)
    dynamic = {name: {0: BATCH_DIM} for name in (INPUT_NAME, *output_names)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of the TorchScript-based exporter
        outputs = wrapper(dummy)
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=list(output_names),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load(str(path))
    declare_output_shapes(model, [tuple(o.shape[1:]) for o in (outputs if isinstance(outputs, tuple) else (outputs,))])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def declare_output_shapes(model: onnx.ModelProto, shapes: list[tuple[int, ...]]) -> None:
    """Write the static per-image output sizes into the graph (the exporter leaves some of them
    symbolic when the batch dimension is dynamic); dimension 0 stays the dynamic batch."""
    for output, shape in zip(model.graph.output, shapes, strict=True):
        dims = output.type.tensor_type.shape.dim
        dims[0].Clear()
        dims[0].dim_param = BATCH_DIM
        for dim, size in zip(dims[1:], shape, strict=True):
            dim.Clear()
            dim.dim_value = size
