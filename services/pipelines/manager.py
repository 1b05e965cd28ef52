"""The pipelines' core, free of transports: create (validated first), list, status, control and consume.

Any replica answers for any pipeline: definitions, results and status reports live in Redis; the replica
holding a pipeline's lease runs it (``ownership.Ownership``) and applies a changed definition (pause,
resume, sources added or removed, terminate) at once when it is the one asked, else within one renewal.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, replace

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from services.pipelines.access import Access
from services.pipelines.ownership import Ownership
from services.pipelines.readers import probe_file
from services.pipelines.references import SourcePolicy
from services.pipelines.requests import NewPipeline, Requester, WorkflowCheck
from services.pipelines.sinks import ResultSinks
from services.pipelines.spec import Desired, PipelineSpec, SourceSpec
from services.pipelines.store import PipelineStore


@dataclass(frozen=True)
class Limits:
    max_pipelines_per_workspace: int = 8
    max_sources: int = 8
    max_fps: float = 30.0
    default_buffer: int = 64
    max_buffer: int = 1024


class PipelineManager:
    def __init__(self, access: Access, store: PipelineStore, sinks: ResultSinks, ownership: Ownership,
                 policy: SourcePolicy, limits: Limits, redis: Redis, workflows: WorkflowCheck) -> None:
        self.access, self.store, self.sinks, self.ownership = access, store, sinks, ownership
        self.policy, self.limits, self.redis, self.workflows = policy, limits, redis, workflows

    # -- create -------------------------------------------------------------------------------------------
    async def initialise(self, requester: Requester, new: NewPipeline) -> PipelineSpec:
        """Validate everything, then record and start the pipeline; nothing exists if any check fails."""
        if not new.sources:
            raise InvalidArgument("a pipeline needs at least one video source")
        if len(new.sources) > self.limits.max_sources:
            raise InvalidArgument(f"a pipeline reads at most {self.limits.max_sources} sources")
        if len({s.source_id for s in new.sources}) != len(new.sources):
            raise InvalidArgument("source ids must be unique within a pipeline")
        max_fps = new.max_fps or self.limits.max_fps
        if not 0 < max_fps <= self.limits.max_fps:
            raise InvalidArgument(f"max_fps must be in (0, {self.limits.max_fps}]")
        size = new.buffer_size or self.limits.default_buffer
        if not 1 <= size <= self.limits.max_buffer:
            raise InvalidArgument(f"results_buffer_size must be in [1, {self.limits.max_buffer}]")
        for source in new.sources:
            await self.check_source(source)
        target = new.target
        if target.is_workflow:  # the gateway validates it in full (a stored one: pinned to a version)
            target = await self.workflows.check(requester.api_key, target)
        else:
            await self.access.check_model(requester, target.model_id)
        if len(await self.store.workspace_ids(requester.workspace)) >= self.limits.max_pipelines_per_workspace:
            raise ResourceExhausted(f"your workspace runs {self.limits.max_pipelines_per_workspace} pipelines "
                                    "already: terminate one first")
        self.ownership.check_capacity()
        spec = PipelineSpec(uuid.uuid4().hex, requester.workspace, requester.api_key, target,
                            list(new.sources), max_fps, size, Desired.RUNNING, time.time())
        await self.ownership.adopt(spec, lambda: self.store.save(spec, created=True))
        return spec

    async def check_source(self, source: SourceSpec) -> None:
        if source.rtsp_transport not in ("tcp", "udp"):
            raise InvalidArgument("rtsp_transport must be tcp or udp")
        if not source.source_id or len(source.source_id) > 128:
            raise InvalidArgument("a source id must be 1 to 128 characters")
        if self.policy.kind(source.reference) == "file":
            path = str(self.policy.file_path(source.reference))
            try:
                await asyncio.to_thread(probe_file, path)
            except ValueError:
                raise InvalidArgument("the video file holds no decodable video") from None

    # -- read ---------------------------------------------------------------------------------------------
    async def spec(self, requester: Requester, pipeline_id: str) -> PipelineSpec:
        spec = await self.store.load(pipeline_id) if _valid_id(pipeline_id) else None
        if spec is None or spec.workspace != requester.workspace:  # another workspace's pipeline: not found
            raise NotFound(f"pipeline {pipeline_id[:64]} not found")
        return spec

    async def list(self, requester: Requester) -> list[str]:
        return await self.store.workspace_ids(requester.workspace)

    async def status(self, requester: Requester, pipeline_id: str) -> dict:
        spec = await self.spec(requester, pipeline_id)
        report = self.ownership.local_report(pipeline_id)
        owner = await self.store.owner(pipeline_id)
        if report is None:  # run by another replica: its latest report (published on every renewal)
            try:
                raw = await self.redis.get(self.ownership.report_key(pipeline_id))
            except RedisError:
                raw = None
            # Before its owner's first report: what the owner is applying; "pending" until a replica takes it.
            report = json.loads(raw) if raw else {"state": spec.desired.value if owner else "pending",
                                                  "desired": spec.desired.value}
        report["owner"] = owner
        report.setdefault("frames", {})["buffer_dropped"] = await self.sinks.buffer_dropped(pipeline_id)
        return report

    async def consume(self, requester: Requester, pipeline_id: str, count: int = 1) -> list[dict]:
        await self.spec(requester, pipeline_id)
        return await self.sinks.pop(pipeline_id, max(1, min(count, 1000)))

    # -- control ------------------------------------------------------------------------------------------
    async def set_desired(self, requester: Requester, pipeline_id: str, desired: Desired) -> PipelineSpec:
        spec = await self.spec(requester, pipeline_id)
        spec = replace(spec, desired=desired)
        await self._update(spec)
        return spec

    async def add_source(self, requester: Requester, pipeline_id: str, source: SourceSpec) -> PipelineSpec:
        spec = await self.spec(requester, pipeline_id)
        if any(s.source_id == source.source_id for s in spec.sources):
            raise InvalidArgument(f"the pipeline already has a source {source.source_id[:128]}")
        if len(spec.sources) >= self.limits.max_sources:
            raise ResourceExhausted(f"a pipeline reads at most {self.limits.max_sources} sources")
        await self.check_source(source)
        spec = replace(spec, sources=[*spec.sources, source])
        await self._update(spec)
        return spec

    async def remove_source(self, requester: Requester, pipeline_id: str, source_id: str) -> PipelineSpec:
        spec = await self.spec(requester, pipeline_id)
        kept = [s for s in spec.sources if s.source_id != source_id]
        if len(kept) == len(spec.sources):
            raise NotFound(f"the pipeline has no source {source_id[:128]}")
        if not kept:
            raise FailedPrecondition("a pipeline keeps at least one source: terminate it instead")
        spec = replace(spec, sources=kept)
        await self._update(spec)
        return spec

    async def terminate(self, requester: Requester, pipeline_id: str) -> None:
        """Delete the record (the pipeline is gone for every replica), then stop it here if it runs here."""
        spec = await self.spec(requester, pipeline_id)
        await self.store.delete(spec)
        await self.sinks.delete(pipeline_id)
        await self.ownership.drop(pipeline_id)

    async def push_frame(self, requester: Requester, pipeline_id: str, source_id: str, encoded: bytes,
                         captured_at: float | None) -> int:
        await self.spec(requester, pipeline_id)
        return self.ownership.push(pipeline_id, source_id, encoded, captured_at)

    async def _update(self, spec: PipelineSpec) -> None:
        await self.store.save(spec)
        await self.ownership.reconcile(spec)


def _valid_id(pipeline_id: str) -> bool:
    return 0 < len(pipeline_id) <= 64 and pipeline_id.isalnum()
