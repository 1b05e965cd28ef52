"""Open Inference Protocol tensors <-> fleet.v1 messages, with neither gRPC nor HTTP in sight.

Inputs (one tensor, named ``image``):
  - ``BYTES`` of shape ``[B]`` (or ``[B, 1]``): encoded images (JPEG, PNG, BMP, WebP), one per batch row;
  - ``UINT8`` of shape ``[H, W, 3]`` or ``[B, H, W, 3]``: raw pixels, RGB (request parameter
    ``color_order: "bgr"`` for BGR).
Or, for a task with a text input (``Task.oip_text_input``, named by the task), that one tensor:
``BYTES`` ``[N]`` (or ``[N, 1]``) UTF-8 strings, one per row.
Options are request parameters: confidence, visualize, and those the tasks declare (``Task.oip_request_parameters``:
the detection family's NMS options and class filter, comma-separated names), each accepted for any model.

Outputs: each task's (``Task.oip_outputs`` and ``Task.oip_tensors`` in ``services.tasks``), every row of
every batch image, then ``image_size`` INT32 [B, 2] (width, height) and, with visualize, ``visualization``
BYTES [B] (JPEG). The README lists them per task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2, model_pb2
from services.common.errors import InvalidArgument
from services.gateway.params import set_parameter
from services.tasks import registry as tasks
from services.tasks.base import OipParameter, TensorSpec

INPUT_NAME = "image"
# Parameters Triton's and KServe's clients set on their own; accepted and ignored.
CLIENT_PARAMETERS = frozenset({"sequence_id", "sequence_start", "sequence_end", "priority", "timeout",
                               "binary_data_output", "binary_data", "binary_data_size", "headers"})
# Every task's options; the tasks' own come between them (``option_parameters``).
CONFIDENCE, VISUALIZE = OipParameter("confidence", "number"), OipParameter("visualize", "bool")
NUMPY_TYPES = {"UINT8": np.uint8, "INT32": np.int32, "INT64": np.int64, "FP32": np.float32, "FP64": np.float64,
               "BOOL": np.bool_}


@dataclass
class Tensor:
    """One tensor: numeric ``data`` as a numpy array, or a list of bytes for ``BYTES``."""

    name: str
    datatype: str
    shape: list[int]
    data: np.ndarray | list[bytes]
    text: bool = False  # BYTES elements are UTF-8 text (else binary, e.g. JPEG)


INPUTS = (TensorSpec(INPUT_NAME, "BYTES", (-1,)),)


def input_specs(model: descriptor_pb2.ModelDescriptor) -> tuple[TensorSpec, ...]:
    """The input tensors a model takes (ModelMetadata's inputs): the images, and its texts where it has some."""
    text = tasks.of_model(model).oip_text_input
    return (*INPUTS, TensorSpec(text, "BYTES", (-1,))) if text else INPUTS


def texts(inputs: list[Tensor], model: descriptor_pb2.ModelDescriptor) -> list[str] | None:
    """The strings of the model's text input tensor when that is what was sent (None: not a text request)."""
    name = tasks.of_model(model).oip_text_input
    if not name or not any(t.name == name for t in inputs):
        return None
    if len(inputs) != 1:
        raise InvalidArgument(f"send one input tensor: {INPUT_NAME!r} (images) or {name!r} (texts), "
                              f"got {[t.name for t in inputs]}")
    tensor = inputs[0]
    shape = tensor.shape
    if tensor.datatype != "BYTES" or not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise InvalidArgument(f"input {name!r} is BYTES of shape [N] or [N, 1] (UTF-8 strings), "
                              f"got {tensor.datatype} {shape}")
    if len(tensor.data) != shape[0]:
        raise InvalidArgument(f"input {name!r}: shape {shape} says {shape[0]} texts, but {len(tensor.data)} were sent")
    try:
        return [bytes(item).decode("utf-8") for item in tensor.data]
    except UnicodeDecodeError:
        raise InvalidArgument(f"input {name!r}: every element must be UTF-8 text") from None


def model_id_of(name: str, version: str = "") -> str:
    """The fleet's model id from OIP's name and version: ("shapes-det", "1") -> "shapes-det/1"."""
    if not name:
        raise InvalidArgument("the model name is empty")
    if not version:
        return name
    if "/" in name:
        if name.rsplit("/", 1)[1] != version:
            raise InvalidArgument(f"model {name!r} already names a version; version {version!r} contradicts it")
        return name
    return f"{name}/{version}"


def option_parameters() -> list[OipParameter]:
    """The request parameters that set InferenceParameters: confidence, the tasks' (each once, in registry order),
    visualize."""
    found: dict[str, OipParameter] = {}
    for option in (CONFIDENCE, *(o for task in tasks.all_tasks() for o in task.oip_request_parameters), VISUALIZE):
        if found.setdefault(option.name, option) != option:
            raise ValueError(f"tasks declare {option.name} twice, differently: {found[option.name]} and {option}")
    return list(found.values())


def options(parameters: dict[str, object]) -> tuple[inference_pb2.InferenceParameters, bool]:
    """Task parameters and whether pixels are BGR, from request parameters (unknown names refused)."""
    accepted = option_parameters()
    names = [option.name for option in accepted]
    unknown = sorted(set(parameters) - set(names) - CLIENT_PARAMETERS - {"color_order"})
    if unknown:
        raise InvalidArgument(f"unknown request parameters {unknown}; accepted: {', '.join(names)}, color_order")
    order = str(parameters.get("color_order", "rgb")).lower()
    if order not in ("rgb", "bgr"):
        raise InvalidArgument(f"color_order must be 'rgb' or 'bgr', got {order!r}")
    params = inference_pb2.InferenceParameters()
    for option in accepted:
        set_parameter(params, option.name, option.kind, parameters.get(option.name))
    return params, order == "bgr"


def images(inputs: list[Tensor], bgr: bool = False) -> list[inference_pb2.Image]:
    """One fleet.v1 Image per batch row of the single input tensor."""
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        names = [t.name for t in inputs]
        raise InvalidArgument(f"expected one input tensor named {INPUT_NAME!r} (BYTES or UINT8), got {names}")
    tensor = inputs[0]
    if any(d < 0 for d in tensor.shape):
        raise InvalidArgument(f"input shape {tensor.shape} has a negative dimension")
    if tensor.datatype == "BYTES":
        return _encoded(tensor)
    if tensor.datatype == "UINT8":
        return _raw(tensor, bgr)
    raise InvalidArgument(f"input {INPUT_NAME!r} must be BYTES (encoded images) or UINT8 (pixels), "
                          f"not {tensor.datatype}")


def _encoded(tensor: Tensor) -> list[inference_pb2.Image]:
    shape = tensor.shape
    if not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) or shape[0] < 1:
        raise InvalidArgument(f"a BYTES image input has shape [B] or [B, 1] with B >= 1, got {shape}")
    items = tensor.data
    if len(items) != shape[0]:
        raise InvalidArgument(f"input shape {shape} says {shape[0]} images, but {len(items)} were sent")
    return [inference_pb2.Image(encoded=bytes(item)) for item in items]


def _raw(tensor: Tensor, bgr: bool) -> list[inference_pb2.Image]:
    shape = tensor.shape
    if len(shape) == 3:
        shape = [1, *shape]
    if len(shape) != 4 or shape[3] != 3 or min(shape) < 1:
        raise InvalidArgument(f"a UINT8 image input has shape [H, W, 3] or [B, H, W, 3], got {tensor.shape}")
    pixels = np.asarray(tensor.data, dtype=np.uint8).reshape(-1)
    batch, height, width, _ = shape
    if pixels.size != batch * height * width * 3:
        raise InvalidArgument(f"input shape {tensor.shape} needs {batch * height * width * 3} bytes, "
                              f"got {pixels.size}")
    order = model_pb2.COLOR_ORDER_BGR if bgr else model_pb2.COLOR_ORDER_RGB
    rows = pixels.reshape(batch, -1)
    return [inference_pb2.Image(raw=inference_pb2.RawImage(data=row.tobytes(), width=width, height=height, channels=3,
                                                           color_order=order)) for row in rows]


# ---- responses -> output tensors ----------------------------------------------------------------


def output_specs(model: descriptor_pb2.ModelDescriptor) -> tuple[TensorSpec, ...]:
    """The output tensors a model answers (ModelMetadata's outputs)."""
    return tasks.of_model(model).oip_outputs


def outputs(model: descriptor_pb2.ModelDescriptor, responses: list[inference_pb2.InferResponse],
            requested: list[str]) -> list[Tensor]:
    """The output tensors for one request's responses (one per batch row), limited to ``requested``."""
    task = tasks.of_model(model)
    known = [spec.name for spec in task.oip_outputs]
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise InvalidArgument(f"unknown outputs {unknown}; this model has {known}")
    tensors = task.oip_tensors(responses, model)
    b = len(responses)
    tensors.append(Tensor("image_size", "INT32", [b, 2],
                          np.array([[r.image_width, r.image_height] for r in responses], np.int32).reshape(b, 2)))
    if any(r.visualization for r in responses):
        tensors.append(Tensor("visualization", "BYTES", [b], [r.visualization for r in responses]))
    return [t for t in tensors if t.name in requested] if requested else tensors
