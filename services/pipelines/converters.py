"""fleet.v1 pipeline messages <-> the pipelines' domain types (kept apart from the servicer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

from google.protobuf import json_format

from fleet.v1 import pipelines_pb2
from services.common.errors import InvalidArgument
from services.pipelines.processors import MAX_PARAMETERS_BYTES, stored_workflow_target, workflow_target
from services.pipelines.requests import NewPipeline, PushItem
from services.pipelines.spec import PipelineSpec, SourceSpec, Target


def source_of(message: pipelines_pb2.VideoSource, index: int) -> SourceSpec:
    return SourceSpec(message.source_id or str(index), message.reference, message.rtsp_transport or "tcp")


def new_pipeline(request: pipelines_pb2.CreatePipelineRequest) -> NewPipeline:
    if request.HasField("workflow"):
        if request.model_id:
            raise InvalidArgument("send model_id or workflow, not both")
        target = _workflow_target(request.workflow)
    else:
        target = Target(model_id=request.model_id,
                        confidence=request.confidence if request.HasField("confidence") else None)
    return NewPipeline([source_of(s, i) for i, s in enumerate(request.sources)], target,
                       request.max_fps or None, request.results_buffer_size or None)


def info(spec: PipelineSpec, report: dict | None = None) -> pipelines_pb2.PipelineInfo:
    report = report or {}
    return pipelines_pb2.PipelineInfo(
        pipeline_id=spec.pipeline_id, model_id=spec.target.model_id, max_fps=spec.max_fps,
        sources=[pipelines_pb2.VideoSource(source_id=s.source_id, reference=s.reference,
                                           rtsp_transport=s.rtsp_transport) for s in spec.sources],
        state=str(report.get("state", "")), report_json=json.dumps(report) if report else "",
        workflow=workflow_label(spec.target))


def result(body: dict) -> pipelines_pb2.PipelineResult:
    return pipelines_pb2.PipelineResult(
        source_id=body["source_id"], frame_id=body["frame_id"], captured_at=body["captured_at"],
        completed_at=body["completed_at"], outputs_json=json.dumps(body["outputs"]) if body["outputs"] else "",
        error=body["error"])


async def push_items(requests: AsyncIterator[pipelines_pb2.PushFramesRequest]) -> AsyncIterator[PushItem]:
    """Pushed frames; the pipeline named on the stream's first message holds for those that name none."""
    pipeline_id = ""
    async for item in requests:
        pipeline_id = item.pipeline_id or pipeline_id
        if not pipeline_id:
            raise InvalidArgument("the first PushFramesRequest must name the pipeline")
        yield PushItem(pipeline_id, item.source_id, item.image, item.captured_at or None)


def _workflow_target(workflow: pipelines_pb2.PipelineWorkflow) -> Target:
    image_input = workflow.image_input_name or "image"
    which = workflow.WhichOneof("workflow")
    if which == "definition":
        target = workflow_target(json_format.MessageToDict(workflow.definition), image_input)
    elif which == "stored":
        stored = workflow.stored
        target = stored_workflow_target(stored.workspace, stored.workflow_id, stored.version_id or None,
                                        image_input)
    else:
        raise InvalidArgument("workflow: send a definition or a stored workflow (workspace and workflow_id)")
    if workflow.HasField("parameters"):
        text = json.dumps(json_format.MessageToDict(workflow.parameters))
        if len(text) > MAX_PARAMETERS_BYTES:
            raise InvalidArgument("workflow.parameters must be at most 64 KiB as JSON")
        target = replace(target, parameters=text)
    return target


def workflow_label(target: Target) -> str:
    """How a pipeline's workflow is named in its info: stored as workspace/id@version, else "inline"."""
    if target.workflow_id:
        return f"{target.workflow_workspace}/{target.workflow_id}@{target.workflow_version or 'current'}"
    return "inline" if target.workflow else ""
