"""fleet.v1 answers in the Roboflow inference server's JSON shapes; each task renders its own part."""

from __future__ import annotations

import base64

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2
from services.tasks import registry as tasks

Json = dict[str, object]


def inference_json(response: inference_pb2.InferResponse) -> Json:
    """A Roboflow inference response: inference_id, time (s), image {width, height}, the task's part, ...

    A response of a task this gateway does not know is an error (UnknownTask), never an empty answer."""
    task = tasks.of_response(response)
    body: Json = {
        "inference_id": response.inference_id,
        "time": response.timings.gateway_ms / 1e3,
        "image": {"width": response.image_width, "height": response.image_height},
        **task.roboflow_json(response),
    }
    if response.visualization:
        body["visualization"] = base64.b64encode(response.visualization).decode("ascii")
    return body


def model_json(model_id: str, model: descriptor_pb2.ModelDescriptor | None) -> Json:
    """One entry of /model/registry, as inference-sdk's ModelDescription reads it (``model``: None when the
    model is loaded but no longer registered)."""
    if model is None:
        return {"model_id": model_id, "task_type": "unknown"}
    task = tasks.of_model(model)
    return {"model_id": model_id, "task_type": task.roboflow_task or task.name,
            "batch_size": model.max_batch_size or 1, "input_height": model.input.height,
            "input_width": model.input.width}
