"""fleet.v1 pipeline messages <-> the pipelines' domain types (kept apart from the servicer)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fleet.v1 import pipelines_pb2
from services.common.errors import InvalidArgument
from services.pipelines.requests import NewPipeline, PushItem
from services.pipelines.spec import PipelineSpec, SourceSpec, Target


def source_of(message: pipelines_pb2.VideoSource, index: int) -> SourceSpec:
    return SourceSpec(message.source_id or str(index), message.reference, message.rtsp_transport or "tcp")


def new_pipeline(request: pipelines_pb2.CreatePipelineRequest) -> NewPipeline:
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
        state=str(report.get("state", "")), report_json=json.dumps(report) if report else "")


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
