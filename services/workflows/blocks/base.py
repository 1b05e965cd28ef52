"""What a block is: its manifest (id, aliases, parameters, outputs) and how it runs a batch of elements.

A parameter accepts literals of some Python types and/or selectors: ``$inputs.<parameter>`` where it takes
literals, ``$inputs.<image>`` / ``$steps.<step>.<output>`` where it names ``kinds``. A block's ``run`` gets
the elements of one step (every image, or every crop, of the run at once: model blocks answer them in one
batched call) and answers one dict of outputs per element.

A block declares how far its failures reach (``failure_scope``): ``RUN`` (the default) — whatever it raises fails
the run; ``ELEMENT`` — it may answer an element's own error (an ``INVALID_ARGUMENT`` ``FleetError`` in that
element's place: its image or crop cannot be decoded, or the worker refused that one item), which fails only
that element's branch. What it raises still fails the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import inference_pb2
from services.common.errors import FleetError

Json = dict[str, Any]
Item = dict[str, Any]
RUN, ELEMENT = "run", "element"  # failure scopes
FAILURE_SCOPES = {
    RUN: "a failure of this step fails the run (its status, the step named)",
    ELEMENT: "an item's own INVALID_ARGUMENT error (its image or crop cannot be decoded, is outside the limits, or "
             "the worker refused that item) fails only that image's or crop's branch: its outputs answer "
             "{\"error\": {\"step\", \"status\", \"message\"}}; the run fails when every element of the step failed, "
             "and any other error (unknown model, auth, deadline, capacity) fails the run",
}


@dataclass(frozen=True)
class Param:
    doc: str
    kinds: tuple[str, ...] = ()  # kinds a step-output / image selector may bring (empty: none)
    literal: tuple[type, ...] = ()  # literal types accepted (and so $inputs parameters); empty: selector only
    required: bool = False
    default: Any = None
    shape: str = "one"  # "one"; "list": a list of such values; "mapping": names -> such values

    def describe(self) -> Json:
        return {"description": self.doc, "required": self.required, "default": self.default,
                "selector_kinds": list(self.kinds), "literal_types": [t.__name__ for t in self.literal],
                "shape": self.shape}


class ModelRunner(Protocol):
    """Model calls as the engine needs them; the gateway binds the caller and ``Gateway.infer_images``."""

    async def model(self, model_id: str) -> descriptor_pb2.ModelDescriptor: ...

    async def infer_each(self, model: descriptor_pb2.ModelDescriptor, images: list[inference_pb2.Image],
                         parameters: inference_pb2.InferenceParameters,
                         ) -> list[inference_pb2.InferResponse | FleetError]:
        """Each image's response or its own error (several images: one batched call); the call's error, and a
        single image's, is raised."""
        ...

    async def infer_request(self, model: descriptor_pb2.ModelDescriptor,
                            request: inference_pb2.InferRequest) -> inference_pb2.InferResponse:
        """One request with typed inputs (texts, prompts) beside its image."""
        ...

    async def infer_crops(self, detector: descriptor_pb2.ModelDescriptor, image: inference_pb2.Image,
                          parameters: inference_pb2.InferenceParameters, classifier: descriptor_pb2.ModelDescriptor,
                          classifier_parameters: inference_pb2.InferenceParameters,
                          max_crops: int) -> CropsAnswer | None:
        """Detect on ``image``, crop each detection, classify the crops, in one call where one worker holds both
        models; None where none does (the engine then runs the steps one by one)."""
        ...


@dataclass(frozen=True)
class CropsAnswer:
    """A fused detect -> crop -> classify call's answer on one image."""

    detections: inference_pb2.InferResponse
    #: The classifier's answer per detection, in order; the error of the first crop that failed; None when there
    #: were more detections than ``max_crops`` (the crop step reports it).
    crops: list[inference_pb2.InferResponse] | Exception | None


@dataclass
class RunContext:
    """What a block may use while running one step."""

    step: str
    models: ModelRunner
    cpu: Callable[..., Awaitable[Any]]  # run a CPU-bound function in the engine's thread pool
    max_crops_per_image: int


class Block:
    id: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}
    #: output name -> kind; "=<param>" takes the kind of what feeds that parameter.
    outputs: ClassVar[dict[str, str]] = {}
    #: Each element's outputs are lists (one per child: a crop): the step is one dimension deeper.
    adds_dimension: ClassVar[bool] = False
    #: It reads pixels of the images it is given (crops, drawings): input images it reads are decoded early.
    needs_pixels: ClassVar[bool] = False
    #: It does no image work in the engine: it reads no pixels, cuts no crops, draws nothing, answers no image
    #: (a model step sends the images as they came; a pure-JSON block reads predictions and values). A run
    #: of such blocks alone is light (``Compiled.light``): a gateway runs it itself (docs/workflows.md).
    image_free: ClassVar[bool] = False
    #: Parameters Roboflow's manifest has that this block accepts and ignores (active learning, ...).
    ignored: ClassVar[tuple[str, ...]] = ()
    #: How far a failure reaches (``RUN``, ``ELEMENT``: see the module's docstring and ``FAILURE_SCOPES``).
    failure_scope: ClassVar[str] = RUN

    def check(self, step: str, literals: dict[str, Any]) -> Any:
        """Validate the step's literal parameters (``InvalidWorkflow`` naming the step and field); the value
        returned is kept in the compiled step and handed to ``run`` as ``config``."""
        return None

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item | FleetError]:
        """One dict of outputs per item (an ``ELEMENT``-scoped block: or the item's own ``FleetError``)."""
        raise NotImplementedError

    def describe(self) -> Json:
        return {"type": self.id, "aliases": list(self.aliases), "summary": self.summary,
                "parameters": {n: p.describe() for n, p in self.params.items()},
                "outputs": [{"name": n, "kind": k} for n, k in self.outputs.items()],
                "adds_dimension": self.adds_dimension,
                "failure_scope": {"scope": self.failure_scope, "meaning": FAILURE_SCOPES[self.failure_scope]}}
