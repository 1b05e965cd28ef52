"""Tiny real ONNX models built with the onnx helper API, for tests that need many or odd models.

``yolov8_like`` gives a model whose output has the yolov8 detection layout
[B, 4 + nc, N]: a strided convolution with ``4 + nc`` output channels, flattened.
Its numbers mean nothing; its shapes, size and sha256 are what the tests use.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def yolov8_like(size: int = 64, num_classes: int = 2, seed: int = 0, stride: int = 8,
                padding_bytes: int = 0, extra_rows: int = 0) -> bytes:
    """Serialized ONNX bytes; ``padding_bytes`` adds an unused initializer to make the file bigger;
    ``extra_rows`` adds channels so the output does NOT match the declared class count."""
    rng = np.random.default_rng(seed)
    channels = 4 + num_classes + extra_rows
    weight = numpy_helper.from_array(rng.normal(0, 0.05, (channels, 3, stride, stride)).astype(np.float32), "w")
    shape = numpy_helper.from_array(np.array([0, channels, -1], np.int64), "shape")
    initializers = [weight, shape]
    nodes = [helper.make_node("Conv", ["images", "w"], ["conv"], strides=[stride, stride])]
    if padding_bytes:
        # A large weight read at an input-dependent index, so no optimizer can drop it.
        initializers += [
            numpy_helper.from_array(rng.random(padding_bytes // 4).astype(np.float32), "padding"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ]
        nodes += [
            helper.make_node("ReduceMax", ["images"], ["peak"], keepdims=0),
            helper.make_node("Mul", ["peak", "zero"], ["nothing"]),
            helper.make_node("Cast", ["nothing"], ["index"], to=TensorProto.INT64),
            helper.make_node("Gather", ["padding", "index"], ["picked"]),
            helper.make_node("Mul", ["picked", "zero"], ["no_effect"]),
            helper.make_node("Add", ["conv", "no_effect"], ["conv_kept"]),
        ]
    nodes.append(helper.make_node("Reshape", ["conv_kept" if padding_bytes else "conv", "shape"], ["output0"]))
    graph = helper.make_graph(
        nodes, "yolov8_like",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", channels, "anchors"])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write_package(dest: Path, onnx_bytes: bytes, *, size: int = 64, num_classes: int = 2,
                  model_type: str = "yolov8", **overrides: object) -> Path:
    """A model package directory (model.onnx + model.json) for the given weights."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "model.onnx").write_bytes(onnx_bytes)
    spec = {
        "format_version": 1, "name": dest.name, "task_type": "object-detection", "model_type": model_type,
        "class_names": [f"c{i}" for i in range(num_classes)], "input": {"width": size, "height": size},
        "batch": {"max_batch_size": 8},
        "weights": {"file": "model.onnx", "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
                    "size_bytes": len(onnx_bytes)},
        **overrides,
    }
    (dest / "model.json").write_text(json.dumps(spec))
    return dest


def export_like(outputs: list[tuple[str, str, tuple[int, ...]]], *, size: int = 64, batch: int | str = "batch",
                dynamic_size: bool = False, metadata: dict[str, str] | None = None, seed: int = 0) -> bytes:
    """An export with the given outputs and exporter metadata (``metadata_props``), for ``fleet package``.

    Each output is (name, kind, channels): ``dense`` [B, C, N] (C = channels[0]); ``rows`` [B, N, C]
    (one row per candidate, as YOLOv5 and end-to-end exports); ``protos`` [B, C, size/4, size/4];
    ``vector`` [B, C]. N = (size / 8)^2. The numbers mean nothing; shapes and metadata are the point.
    """
    rng = np.random.default_rng(seed)
    h = w = "height" if dynamic_size else size
    initializers, nodes, graph_outputs = [], [], []
    for index, (name, kind, (channels,)) in enumerate(outputs):
        stride = 4 if kind == "protos" else 8
        weight = f"w{index}"
        initializers.append(numpy_helper.from_array(
            rng.normal(0, 0.05, (channels, 3, stride, stride)).astype(np.float32), weight))
        conv = f"conv{index}"
        nodes.append(helper.make_node("Conv", ["images", weight], [conv], strides=[stride, stride]))
        cells = None if dynamic_size else (size // 8) ** 2
        if kind == "protos":
            nodes.append(helper.make_node("Identity", [conv], [name]))
            side = None if dynamic_size else size // 4
            dims: list = [batch, channels, side or "ph", side or "pw"]
        elif kind == "vector":
            pooled = f"pool{index}"
            nodes.append(helper.make_node("GlobalAveragePool", [conv], [pooled]))
            initializers.append(numpy_helper.from_array(np.array([0, channels], np.int64), f"shape{index}"))
            nodes.append(helper.make_node("Reshape", [pooled, f"shape{index}"], [name]))
            dims = [batch, channels]
        else:
            initializers.append(numpy_helper.from_array(np.array([0, channels, -1], np.int64), f"shape{index}"))
            flat = name if kind == "dense" else f"flat{index}"
            nodes.append(helper.make_node("Reshape", [conv, f"shape{index}"], [flat]))
            if kind == "rows":
                nodes.append(helper.make_node("Transpose", [flat], [name], perm=[0, 2, 1]))
                dims = [batch, cells or "anchors", channels]
            else:
                dims = [batch, channels, cells or "anchors"]
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    graph = helper.make_graph(
        nodes, "export_like", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, h, w])],
        graph_outputs, initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="pytorch")
    model.ir_version = 8
    if metadata:
        helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def ultralytics_metadata(task: str, names: list[str], imgsz: int | None = 64, **extra: object) -> dict[str, str]:
    """Metadata as Ultralytics' exporter writes it (every value a string; names a dict literal)."""
    meta = {"description": f"Ultralytics YOLOv8n-{task} model", "author": "Ultralytics", "version": "8.3.0",
            "license": "AGPL-3.0 License", "stride": "32", "task": task, "batch": "1",
            "names": str(dict(enumerate(names)))}
    if imgsz is not None:
        meta["imgsz"] = str([imgsz, imgsz])
    meta.update({k: str(v) for k, v in extra.items()})
    return meta
