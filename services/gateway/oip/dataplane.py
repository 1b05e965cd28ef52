"""The Open Inference Protocol's operations on the gateway core, shared by its gRPC and REST edges.

Knows OIP's vocabulary (model name + version, tensors, repository index) and the gateway's core
calls; knows neither protobuf transport nor HTTP. A fleet model id ``project/version`` is OIP model
``project`` at version ``version`` (or the whole id, or an alias, as the name with no version).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2
from services.gateway.caller import Caller
from services.gateway.gateway import Gateway
from services.gateway.oip import tensors
from services.gateway.oip.tensors import Tensor, TensorSpec
from services.tasks import registry as tasks

PLATFORM = "onnxruntime_onnx"
EXTENSIONS = ("model_repository", "fleet_tasks")
Scalar = bool | int | float | str


@dataclass
class ModelMetadata:
    name: str
    versions: list[str]
    platform: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameters: dict[str, Scalar]
    input_parameters: dict[str, Scalar]


@dataclass
class InferResult:
    model_name: str
    model_version: str
    id: str
    outputs: list[Tensor]
    parameters: dict[str, Scalar] = field(default_factory=dict)


@dataclass
class IndexEntry:
    name: str
    version: str
    state: str  # READY or UNAVAILABLE
    reason: str = ""


def split_id(model_id: str) -> tuple[str, str]:
    """("shapes-det/1") -> ("shapes-det", "1")."""
    name, _, version = model_id.rpartition("/")
    return (name, version) if name else (model_id, "")


def metadata_of(name: str, model: descriptor_pb2.ModelDescriptor) -> ModelMetadata:
    return ModelMetadata(
        name=name, versions=[split_id(model.model_id)[1]], platform=PLATFORM, inputs=tensors.input_specs(model),
        outputs=tensors.output_specs(model),
        parameters={"model_id": model.model_id, "task": tasks.of_model(model).name, "model_type": model.model_type,
                    "class_names": ",".join(model.class_names), "num_classes": len(model.class_names),
                    "input_width": model.input.width, "input_height": model.input.height,
                    "max_batch_size": model.max_batch_size},
        input_parameters={"accepts": "BYTES [B] encoded images, or UINT8 [H, W, 3] / [B, H, W, 3] pixels"
                          + (f"; or BYTES [N] UTF-8 texts as {text!r}" if (text := tasks.of_model(model).oip_text_input)
                             else "")},
    )


class DataPlane:
    def __init__(self, gateway: Gateway, server_name: str, server_version: str) -> None:
        self.gateway, self.server_name, self.server_version = gateway, server_name, server_version

    # ---- server ---------------------------------------------------------------------------------
    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.gateway.serving()

    # ---- models ---------------------------------------------------------------------------------
    async def model_ready(self, caller: Caller, name: str, version: str) -> bool:
        return await self.gateway.model_ready(caller, tensors.model_id_of(name, version))

    async def model_metadata(self, caller: Caller, name: str, version: str) -> ModelMetadata:
        model = await self.gateway.model(caller, tensors.model_id_of(name, version))
        return metadata_of(name, model)

    async def infer(self, caller: Caller, name: str, version: str, request_id: str, inputs: list[Tensor],
                    parameters: dict[str, object], requested: list[str], timeout_s: float | None) -> InferResult:
        """The batch rows as one batch on one worker (the core's batch use case), answered as tensors; a row
        that fails fails the request, naming its row."""
        model = await self.gateway.model(caller, tensors.model_id_of(name, version))
        params, bgr = tensors.options(parameters)
        texts = tensors.texts(inputs, model)
        if texts is not None:  # one request with the texts: one row per text
            text_input = tasks.of_model(model).oip_text_input or ""
            responses = [await self.gateway.infer(caller, inference_pb2.InferRequest(
                model_id=model.model_id, parameters=params,
                inputs={text_input: inference_pb2.InputValue(texts=inference_pb2.Texts(values=texts))}),
                timeout_s, model)]
        else:
            rows = tensors.images(inputs, bgr)
            del inputs  # the rows hold the images now: a stream's items keep one copy each while they are served
            responses = await self.gateway.infer_images(caller, model, rows, params, timeout_s, item="batch row")
        outputs = tensors.outputs(model, responses, requested)
        extra: dict[str, Scalar] = tasks.of_model(model).oip_parameters(responses)
        return InferResult(
            model_name=name, model_version=split_id(model.model_id)[1], id=request_id, outputs=outputs,
            parameters={"model_id": model.model_id,
                        "inference_ids": ",".join(r.inference_id for r in responses),
                        "gateway_ms": max(r.timings.gateway_ms for r in responses), **extra},
        )

    # ---- model repository extension --------------------------------------------------------------
    async def index(self, caller: Caller, ready_only: bool) -> list[IndexEntry]:
        models = await self.gateway.list_models(caller)
        held = set().union(*self.gateway.loaded_model_ids(caller))
        entries = []
        for model in sorted(models, key=lambda m: m.model_id):
            name, version = split_id(model.model_id)
            if model.model_id in held:
                entries.append(IndexEntry(name, version, "READY"))
            elif not ready_only:
                entries.append(IndexEntry(name, version, "UNAVAILABLE",
                                          "not loaded on any worker; loads on first use or on a repository load"))
        return entries

    async def load(self, caller: Caller, name: str) -> None:
        await self.gateway.add_model(caller, tensors.model_id_of(name))

    async def unload(self, caller: Caller, name: str) -> None:
        await self.gateway.remove_model(caller, tensors.model_id_of(name))
