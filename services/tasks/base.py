"""What a task is: everything task-specific, in one class per task, found through ``services.tasks.registry``.

A task (object detection, classification, a plug-in's own) owns:

- its identity: ``name`` (model.json's ``task_type``), its ``fleet.v1.TaskType`` value (0 for tasks added
  as plug-ins), the ``InferResponse`` result field it answers in (``task_result``, an ``Any``, for plug-ins);
- the model types (``layouts``) that serve it, each with the worker's decoder for its raw outputs;
- the inputs its models take when their package declares none (an image);
- how the worker presents a result (its protobuf message, its drawing, its inference-log summary);
- how each edge renders an answer: the Roboflow JSON and ``/infer/<route>``, the OIP output tensors, the
  CLI's table; HTTP routes of its own (``http_routes``: the Roboflow server's ``/clip/*``), kept in
  ``services.tasks.http`` (server-side: FastAPI and the gateway, imported only when the HTTP edge mounts them);
- its part of the CLI: the ``fleet infer`` flags for its typed inputs (``cli_inputs``) and its parameters
  (``cli_parameters``), and subcommands of its own (``cli_commands``, the embedding task's ``fleet compare``);
- its OIP request parameters (``oip_request_parameters``: the detection family's NMS options).

Edges, the CLI and packaging iterate over the registry; none of them names a task. Module-level imports
here and in the task modules are the client install's (protobuf, the standard library): the CLI renders
answers through them. What needs numpy or OpenCV (the worker's presenting, the OIP tensors) imports them
inside the methods that use them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from google.protobuf.message import Message

from fleet.v1 import inference_pb2
from services.common.layouts import Layout

if TYPE_CHECKING:  # the server side's types, for annotations only
    import numpy as np

    from fastapi import APIRouter

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.http.context import HttpContext
    from services.gateway.oip.tensors import Tensor

Json = dict[str, Any]


@dataclass(frozen=True)
class TensorSpec:
    """An OIP tensor a task answers: its name, datatype and shape (-1: any size)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


#: Every task's OIP outputs end with these (image sizes; annotated JPEGs when asked for).
COMMON_OUTPUTS = (TensorSpec("image_size", "INT32", (-1, 2)), TensorSpec("visualization", "BYTES", (-1,)))


@dataclass(frozen=True)
class CliInput:
    """A ``fleet infer`` flag for one of a task's typed inputs: repeatable, its values become one entry of
    ``InferRequest.inputs``."""

    flag: str  # "--text"
    input: str  # the InferRequest.inputs name it fills ("text")
    help: str
    build: Callable[[list[Any]], inference_pb2.InputValue]  # the flag's parsed values -> the input
    parse: Callable[[str], Any] = str  # one value from the command line; argparse.ArgumentTypeError if bad
    metavar: str | None = None  # (default: the flag in capitals, TEXT)
    without_image: bool = False  # a request may carry it and no image (texts to embed)


@dataclass(frozen=True)
class CliParameter:
    """A ``fleet infer`` flag for a task's field of ``InferenceParameters`` (``--top-k``): its value goes to
    ``fleet.client.FleetClient.infer`` as the keyword ``parameter``. Tasks that share the field declare the same
    CliParameter (the flag is added once)."""

    flag: str  # "--top-k"
    parameter: str  # FleetClient.infer's keyword, the InferenceParameters field ("top_k")
    help: str | None
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    default: Any = None
    #: "store" (one value), "append" (repeatable: a list), "store_const" (a switch: ``const`` when given, else
    #: ``default``).
    action: Literal["store", "append", "store_const"] = "store"
    const: Any = None
    metavar: str | None = None  # (default: the parameter in capitals, TOP_K)

    def argument(self) -> dict[str, Any]:
        """``argparse.ArgumentParser.add_argument``'s keywords for the flag."""
        common = dict(dest=self.parameter, default=self.default, help=self.help, action=self.action)
        if self.action == "store_const":
            return {**common, "const": self.const}
        return {**common, "type": self.type, "choices": list(self.choices) if self.choices else None,
                "metavar": self.metavar}


@dataclass(frozen=True)
class OipParameter:
    """An Open Inference Protocol request parameter for a task's field of ``InferenceParameters``
    (``iou_threshold``): named as the field; ``kind`` says how its loosely typed value (a string, a JSON number, a
    list) is read: "number", "whole" (a whole number >= 0), "bool", "names" (a list, or one comma-separated
    string). Tasks that share the field declare the same OipParameter (it is accepted once)."""

    name: str
    kind: Literal["number", "whole", "bool", "names"]

    def __post_init__(self) -> None:
        if self.kind not in OIP_KINDS:
            raise ValueError(f"OIP parameter {self.name!r}: kind {self.kind!r} is not one of {', '.join(OIP_KINDS)}")


OIP_KINDS = ("number", "whole", "bool", "names")


@dataclass(frozen=True)
class CliCommand:
    """A ``fleet`` subcommand a task adds (``fleet compare``). The CLI adds the parser, its connection flags
    (address, TLS, API key) and the gRPC error handling; ``run`` gets a connected ``fleet.client.FleetClient``
    and the parsed arguments and returns the exit status."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Any, argparse.Namespace], int]


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table (the CLI's)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


class Task:
    """Base class of a task; subclasses set the class attributes and override what differs."""

    #: model.json's ``task_type`` ("object-detection"); unique.
    name: ClassVar[str]
    #: fleet.v1.TaskType value; 0 (UNSPECIFIED) for tasks without one (plug-ins).
    proto: ClassVar[int] = 0
    #: The InferResponse ``result`` oneof field; "task_result" packs ``result_message`` in an Any.
    result_field: ClassVar[str] = "task_result"
    #: The message a plug-in task's result is (packed into InferResponse.task_result).
    result_message: ClassVar[type[Message] | None] = None
    #: The name Roboflow's API (and inference-sdk) uses for the task ("object-detection").
    roboflow_task: ClassVar[str] = ""
    #: ``POST /infer/<route>`` on the HTTP edge (None: only the generic routes).
    route: ClassVar[str | None] = None
    #: The OIP output tensors, before COMMON_OUTPUTS.
    oip_outputs: ClassVar[tuple[TensorSpec, ...]] = ()
    #: OIP: the BYTES input tensor (UTF-8 strings) sent as the model's texts input of that name, instead of
    #: images (None: images only).
    oip_text_input: ClassVar[str | None] = None
    #: The model types (output layouts) that serve this task.
    layouts: ClassVar[tuple[Layout, ...]] = ()
    #: One line for listings.
    summary: ClassVar[str] = ""
    #: Its models must name their classes (``class_names``).
    needs_classes: ClassVar[bool] = True
    #: The worker runs it with ``run`` (several graphs, texts, prompts) instead of the standard image pipeline
    #: (decode, pre-process, batch the first graph, decode its outputs with the layout's decoder, ``present``).
    custom_run: ClassVar[bool] = False
    #: The worker keeps state per image (a cached image embedding): the gateway sends an image's requests to the
    #: holder a hash of the image picks (``routing.affinity_first``) rather than the least loaded one.
    image_affinity: ClassVar[bool] = False
    #: ``fleet infer`` flags for its typed inputs (``--text``; every task's are added, in registry order).
    cli_inputs: ClassVar[tuple[CliInput, ...]] = ()
    #: ``fleet infer`` flags for its fields of InferenceParameters (``--top-k``).
    cli_parameters: ClassVar[tuple[CliParameter, ...]] = ()
    #: ``fleet`` subcommands of its own (``compare``).
    cli_commands: ClassVar[tuple[CliCommand, ...]] = ()
    #: OIP request parameters for its fields of InferenceParameters (``iou_threshold``; every task's are
    #: accepted, in registry order).
    oip_request_parameters: ClassVar[tuple[OipParameter, ...]] = ()

    # ---- answers --------------------------------------------------------------------------------------
    def result(self, response: inference_pb2.InferResponse) -> Message:
        """The task's result message in ``response``."""
        if self.result_field != "task_result":
            return getattr(response, self.result_field)
        if self.result_message is None:
            raise TypeError(f"task {self.name!r} answers in task_result but names no result_message")
        message = self.result_message()
        if response.HasField("task_result") and not response.task_result.Unpack(message):
            raise TypeError(f"task_result holds {response.task_result.type_url}, not {message.DESCRIPTOR.full_name}")
        return message

    def set_result(self, response: inference_pb2.InferResponse, message: Message) -> None:
        response.task = self.name
        if self.result_field == "task_result":
            response.task_result.Pack(message)
        else:
            getattr(response, self.result_field).CopyFrom(message)

    # ---- the worker (called in its CPU pool, off the event loop) ---------------------------------------
    def present(self, result: Any, spec: ModelSpec, params: Any, height: int, width: int) -> Message:
        """The result as this task's message."""
        raise NotImplementedError

    def draw(self, img: np.ndarray, result: Any, spec: ModelSpec) -> None:
        """Annotate a BGR copy of the image (for ``visualize``); nothing by default."""

    def summarize(self, result: Any, spec: ModelSpec) -> Json:
        """The result's fields in the inference log (small)."""
        return {}

    async def run(self, runtime: Any, record: Any, inputs: Any, params: Any) -> Any:
        """The worker's run of one request (``custom_run`` tasks): a ``services.model_worker.pipeline.
        InferenceOutput`` from the ``services.model_worker.task_runtime.TaskRuntime`` it is given."""
        raise NotImplementedError

    # ---- the edges -------------------------------------------------------------------------------------
    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        """The task-specific part of a Roboflow inference answer (``predictions`` and friends)."""
        raise NotImplementedError

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse],
                    model: ModelDescriptor) -> list[Tensor]:
        """The output tensors (``oip_outputs``) for one request's responses, one per batch row."""
        raise NotImplementedError

    def oip_parameters(self, responses: Sequence[inference_pb2.InferResponse]) -> dict[str, Any]:
        """Response parameters an OIP answer adds for this task (none by default)."""
        return {}

    def http_routes(self, ctx: HttpContext) -> APIRouter | None:
        """HTTP routes of the task's own besides ``POST /infer/<route>`` (the Roboflow server's ``/clip/*``), on
        the gateway's HTTP edge, mounted before its catch-all legacy route; None: none. An override imports its
        router from ``services.tasks.http`` inside the method (FastAPI is not on the client install)."""
        return None

    def table(self, response: inference_pb2.InferResponse) -> str:
        """The CLI's plain-text rendering of the result."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<task {self.name}>"
