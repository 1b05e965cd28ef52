"""A pipeline's definition (what the system of record keeps) and its results, as plain domain types."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum


class Desired(str, Enum):
    RUNNING = "running"
    PAUSED = "paused"


@dataclass(frozen=True)
class SourceSpec:
    source_id: str  # unique within the pipeline; results carry it
    reference: str  # rtsp[s]://, http(s)://, file:// or a path under the roots, push://
    rtsp_transport: str = "tcp"  # tcp or udp (RTSP only)


@dataclass(frozen=True)
class Target:
    """What frames run through: a model (InferBatch) or a workflow (RunWorkflow): a definition sent inline,
    or a stored one, pinned at initialise to the version then current (or the one asked)."""

    model_id: str = ""
    workflow: str = ""  # a workflow definition as JSON text (run with fleet.v1 RunWorkflow)
    image_input: str = "image"  # the workflow's image input frames are given to
    confidence: float | None = None
    output_name: str = "predictions"  # the name a model's result carries in an output dict
    workflow_workspace: str = ""  # a stored workflow: its workspace, id and version ("" until pinned)
    workflow_id: str = ""
    workflow_version: str = ""
    parameters: str = ""  # a workflow's parameter inputs, a JSON object (the reference's workflows_parameters)

    @property
    def is_workflow(self) -> bool:
        return bool(self.workflow or self.workflow_id)


@dataclass
class PipelineSpec:
    pipeline_id: str
    workspace: str
    api_key: str  # the caller's key: frames are sent to the gateway as the caller (never logged nor answered)
    target: Target
    sources: list[SourceSpec]
    max_fps: float
    buffer_size: int
    desired: Desired = Desired.RUNNING
    created_at: float = 0.0

    def to_json(self) -> str:
        data = asdict(self)
        data["desired"] = self.desired.value
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> PipelineSpec:
        data = json.loads(text)
        data["target"] = Target(**data["target"])
        data["sources"] = [SourceSpec(**s) for s in data["sources"]]
        data["desired"] = Desired(data["desired"])
        return cls(**data)


@dataclass(frozen=True)
class Frame:
    """A decoded frame (RGB pixels) or one pushed encoded, with where and when it was captured."""

    source_id: str
    frame_id: int
    captured_at: float  # wall-clock seconds (time.time())
    pixels: object = None  # numpy H x W x 3 uint8 RGB
    encoded: bytes = b""


@dataclass
class FrameResult:
    pipeline_id: str
    source_id: str
    frame_id: int
    captured_at: float
    completed_at: float
    outputs: dict = field(default_factory=dict)  # output name -> JSON value (a Roboflow-shaped inference)
    error: str = ""

    def to_json(self) -> dict:
        return asdict(self)
