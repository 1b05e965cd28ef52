"""A toy task defined only here, to prove a task is one module: its result is a single number (the
image's mean brightness, 0..1, as its model computes it). Services and the CLI load it with
FLEET_TASK_MODULES=tests.plugins.toy_task; nothing outside this module and its test names it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.wrappers_pb2 import DoubleValue

from fleet.v1 import inference_pb2
from services.common.layouts import Layout
from services.tasks import registry
from services.tasks.base import COMMON_OUTPUTS, CliCommand, Json, Task, TensorSpec

NAME = "brightness"


def decode(outputs: Sequence[Any], spec: Any, transform: Any, params: Any) -> float:
    """The model's one output, [1]: the mean of the normalised input."""
    return float(outputs[0].reshape(-1)[0])


def _cli_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="+", help="image file paths")
    p.add_argument("--model", required=True, help="a brightness model id")


def _cli_brightness(client: Any, args: argparse.Namespace) -> int:
    """``fleet brightness IMAGE...``: one line per image, its brightness (one InferBatch call)."""
    batch = client.infer_batch(args.model, [Path(i) for i in args.image])
    failed = 0
    for image, item in zip(args.image, batch.items):
        value = DoubleValue()
        if item.HasField("response") and item.response.task_result.Unpack(value):
            print(f"{image}: {value.value:.4f}")
        else:
            failed += 1
            print(f"{image}: error: {item.error.message}")
    return 1 if failed else 0


class Brightness(Task):
    name = NAME
    result_message = DoubleValue
    roboflow_task = "brightness"
    route = "brightness"
    oip_outputs = (TensorSpec("brightness", "FP32", (-1,)), *COMMON_OUTPUTS)
    summary = "the image's mean brightness"
    needs_classes = False
    layouts = (Layout("mean-value", NAME, 1, "[1]: one number", lambda p: [(1,)],
                      decoder="tests.plugins.toy_task:decode"),)
    cli_commands = (CliCommand("brightness", "the images' mean brightness (the toy plug-in task's own command)",
                               _cli_arguments, _cli_brightness),)

    def present(self, result: float, spec: Any, params: Any, height: int, width: int) -> DoubleValue:
        return DoubleValue(value=result)

    def draw(self, img: Any, result: float, spec: Any) -> None:
        from services.model_worker.visualize import colour, label  # noqa: PLC0415

        label(img, f"brightness {result:.3f}", 4, 22, colour(0))

    def summarize(self, result: float, spec: Any) -> Json:
        return {"brightness": round(result, 4)}

    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        return {"brightness": self.result(response).value}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: Any) -> list:
        import numpy as np  # noqa: PLC0415

        from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

        values = np.array([self.result(r).value for r in responses], np.float32)
        return [Tensor("brightness", "FP32", [len(responses)], values)]

    def table(self, response: inference_pb2.InferResponse) -> str:
        return f"brightness: {self.result(response).value:.4f}"


registry.register(Brightness)


def mean_model(size: int = 32) -> bytes:
    """ONNX: images [B, 3, size, size] -> [B, 1], the mean of every value."""
    import onnx  # noqa: PLC0415
    from onnx import TensorProto, helper  # noqa: PLC0415

    nodes = [helper.make_node("ReduceMean", ["images"], ["per_channel"], axes=[2, 3], keepdims=0),
             helper.make_node("ReduceMean", ["per_channel"], ["mean"], axes=[1], keepdims=1)]
    graph = helper.make_graph(nodes, "mean", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                            ["batch", 3, size, size])],
                              [helper.make_tensor_value_info("mean", TensorProto.FLOAT, ["batch", 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
