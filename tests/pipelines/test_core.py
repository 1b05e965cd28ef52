"""The pipelines' core without processes: source policy, definitions, the latest-frame slot, workflow
definitions, the HTTP payload, and leases on the real Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.common.errors import FailedPrecondition, InvalidArgument
from services.pipelines.http_routes import new_pipeline
from services.pipelines.pipeline import Pipeline
from services.pipelines.processors import workflow_target
from services.pipelines.readers import LatestFrame, PushReader
from services.pipelines.references import SourcePolicy
from services.pipelines.sinks import ResultSinks
from services.pipelines.spec import Desired, Frame, PipelineSpec, SourceSpec, Target
from services.pipelines.store import PipelineStore


def test_source_policy(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    root.mkdir()
    (root / "a.avi").write_bytes(b"x")
    (tmp_path / "secret.avi").write_bytes(b"x")
    policy = SourcePolicy.from_settings(str(root), "cams.example.com,*.local")
    assert policy.kind(str(root / "a.avi")) == "file"
    assert policy.kind(f"file://{root / 'a.avi'}") == "file"
    assert policy.kind("a.avi") == "file"  # relative to a root
    assert policy.kind("rtsp://cams.example.com/1") == "live"
    assert policy.kind("https://door.local/stream.mjpg") == "live"
    assert policy.kind("push://phone") == "push"
    for bad in (str(tmp_path / "secret.avi"), str(root / ".." / "secret.avi"), "../secret.avi",
                str(root / "missing.avi"), "rtsp://elsewhere.com/1", "ftp://cams.example.com/x", "rtsp:///nohost", ""):
        with pytest.raises(InvalidArgument):
            policy.kind(bad)
    with pytest.raises(InvalidArgument, match="file sources are off"):
        SourcePolicy.from_settings("", "").kind(str(root / "a.avi"))


def test_definition_round_trips() -> None:
    spec = PipelineSpec("p1", "demo", "key", Target(model_id="m/1", confidence=0.4),
                        [SourceSpec("0", "rtsp://h/1", "udp")], 5.0, 64, Desired.PAUSED, 1.0)
    assert PipelineSpec.from_json(spec.to_json()) == spec


def test_latest_frame_wins_and_counts_what_it_drops() -> None:
    woken = []
    slot = LatestFrame(lambda: woken.append(1))
    for i in range(5):
        slot.put(Frame("0", i, 0.0))
    assert slot.take().frame_id == 4 and slot.dropped == 4 and slot.take() is None and len(woken) == 5


def test_workflow_specifications_become_workflow_targets() -> None:
    definition = {"version": "1.0", "inputs": [{"type": "WorkflowImage", "name": "frame"}],
                  "steps": [{"type": "roboflow_core/roboflow_object_detection_model@v1", "name": "m",
                             "image": "$inputs.frame", "model_id": "shapes-det/1"}], "outputs": []}
    target = workflow_target(definition, "frame")
    assert json.loads(target.workflow) == definition and target.image_input == "frame" and not target.model_id
    for bad in ("not a dict", ["steps"]):  # the rest is the gateway's to validate, at initialise
        with pytest.raises(InvalidArgument):
            workflow_target(bad)
    with pytest.raises(InvalidArgument):
        workflow_target(definition, "")


def test_the_reference_payload() -> None:
    new = new_pipeline({"video_configuration": {"type": "VideoConfiguration", "video_reference": ["a", "b"],
                                                "max_fps": 7, "video_source_properties": {"rtsp_transport": "udp"}},
                        "processing_configuration": {"type": "ModelConfiguration", "model_id": "m/1"},
                        "sink_configuration": {"type": "MemorySinkConfiguration", "results_buffer_size": 9}})
    assert [(s.source_id, s.reference, s.rtsp_transport) for s in new.sources] == [("0", "a", "udp"), ("1", "b", "udp")]
    assert (new.max_fps, new.buffer_size, new.target.model_id) == (7.0, 9, "m/1")
    for bad in ({}, {"video_configuration": {"video_reference": 0}, "processing_configuration": {}},
                {"video_configuration": {"video_reference": "a"}, "processing_configuration": {"type": "Other"}}):
        with pytest.raises(InvalidArgument):
            new_pipeline(bad)
    # A stored workflow, as inference-sdk sends it (the definition's field present and null).
    video = {"type": "VideoConfiguration", "video_reference": "a"}
    sdk = {"type": "WorkflowConfiguration", "workflow_specification": None, "workspace_name": "demo",
           "workflow_id": "flow", "image_input_name": "frame"}
    target = new_pipeline({"video_configuration": video, "processing_configuration": sdk}).target
    assert (target.workflow_workspace, target.workflow_id, target.workflow_version, target.image_input,
            target.workflow, target.is_workflow) == ("demo", "flow", "", "frame", "", True)
    pinned = new_pipeline({"video_configuration": video,
                           "processing_configuration": {**sdk, "workflow_version_id": 3}}).target
    assert pinned.workflow_version == "3"
    given = new_pipeline({"video_configuration": video,
                          "processing_configuration": {**sdk, "workflows_parameters": {"zone": [1, 2]}}}).target
    assert json.loads(given.parameters) == {"zone": [1, 2]}
    for processing in ({**sdk, "workflow_specification": {"steps": []}}, {**sdk, "workspace_name": None},
                       {**sdk, "workflow_id": ""}, {"type": "WorkflowConfiguration"},
                       {**sdk, "workflows_parameters": ["zone"]}):
        with pytest.raises(InvalidArgument):
            new_pipeline({"video_configuration": video, "processing_configuration": processing})


async def test_leases_have_one_owner(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    store = PipelineStore(None, redis, f"test-{uuid.uuid4().hex[:8]}")  # leases only: no registry needed
    try:
        assert await store.acquire("p", "a", 0.3)
        assert not await store.acquire("p", "b", 0.3)
        assert await store.renew("p", "b", 0.3) is None and await store.renew("p", "a", 0.3) == 0
        await store.release("p", "b")  # not b's: stays a's
        assert await store.owner("p") == "a"
        await asyncio.sleep(0.4)  # expired: another may take it
        assert await store.acquire("p", "b", 0.3) and await store.renew("p", "a", 0.3) is None
        await store.release("p", "b")
        assert await store.owner("p") == ""
    finally:
        await redis.delete(store.lease_key("p"))
        await redis.aclose()


async def test_definitions_live_in_the_registry_with_keys_sealed(tmp_path: Path, redis_url: str,
                                                                  namespace: str) -> None:
    from cryptography.fernet import Fernet  # noqa: PLC0415

    from services.pipelines.sealing import KeySealer  # noqa: PLC0415
    from services.registry.client import RegistryClient  # noqa: PLC0415
    from tests.registry_harness import start_registry  # noqa: PLC0415

    runner = await start_registry(tmp_path, redis_url, namespace)
    registry = RegistryClient(f"127.0.0.1:{runner.port}", 1 << 20)
    redis = Redis.from_url(redis_url)
    store = PipelineStore(registry, redis, namespace, KeySealer(Fernet.generate_key().decode()))
    spec = PipelineSpec("p1", "demo", "fk_secret_key", Target(model_id="m/1"), [SourceSpec("0", "push://a")], 5.0, 8)
    try:
        await store.save(spec)
        await store.save(PipelineSpec("p2", "other", "k2", Target(model_id="m/1"), [], 1.0, 1))
        workspace, stored = await registry.get_pipeline("p1")
        assert workspace == "demo" and "fk_secret_key" not in stored and "fernet:" in stored
        assert await store.load("p1") == spec
        assert await store.all_ids() == ["p1", "p2"] and await store.workspace_ids("demo") == ["p1"]
        with pytest.raises(FailedPrecondition):  # a replica with another sealing key cannot use it
            await PipelineStore(registry, redis, namespace, KeySealer(Fernet.generate_key().decode())).load("p1")
        await store.delete(spec)
        assert await store.load("p1") is None and await store.all_ids() == ["p2"]
    finally:
        await registry.close()
        await redis.aclose()
        await runner.stop()


class SlowModel:
    """Answers each batch after ``seconds``: the pipeline's loop is what is tested, not a model."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    async def process(self, api_key: str, frames: list[Frame]) -> list[dict]:
        await asyncio.sleep(self.seconds)
        return [{"predictions": {"predictions": []}} for _ in frames]


async def test_a_pipeline_handed_over_processes_the_frames_it_took(redis_url: str, namespace: str) -> None:
    """Stopped by a drain (``finish``), a pipeline still processes its batch in flight and the frame its slot
    holds, both acknowledged to the client that pushed them; stopped otherwise (terminate), it drops them."""
    redis = Redis.from_url(redis_url)
    sinks = ResultSinks(redis, f"{namespace}:pipelines", 100, "r1")
    try:
        for pid, finish in (("drained", True), ("terminated", False)):
            spec = PipelineSpec(pid, "demo", "key", Target(model_id="m/1"), [], 30.0, 64)
            pipeline = Pipeline(spec, SlowModel(0.3), [], sinks)
            pipeline.start()
            reader = PushReader(SourceSpec("0", "push://cam"), pid, pipeline.notify)
            pipeline.add_reader(reader)
            reader.push(b"a", 1.0)  # taken at once: in flight for 0.3 s
            await asyncio.sleep(0.1)
            reader.push(b"b", 2.0)  # waits in the slot
            await pipeline.stop(2.0, finish=finish)
            captured = [json.loads(f[b"result"])["captured_at"] for _, f in await redis.xrange(sinks.stream_key(pid))]
            assert captured == ([1.0, 2.0] if finish else [])
    finally:
        await redis.aclose()
