"""The gateway's fused detect -> crop -> classify call (``services.gateway.fused``) against real worker servers on
loopback: it answers from a worker holding both models; a worker the gateway wrongly believes holds both (it has
only the detector), or one that does not answer, yields None so the engine runs the steps one by one; with no
worker believed to hold both, nothing is called."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fleet.internal.v1 import worker_pb2
from fleet.v1 import inference_pb2
from services.cache.embedded import free_port
from services.demo.scenes import generate_scene
from services.gateway import fused
from services.gateway.discovery import StaticDiscovery
from tests.conftest import PACKAGES
from tests.e2e.test_inference import SEEDS, encode
from tests.gateway.test_failover import gateway_over
from tests.model_worker.test_service import descriptor, start_worker

pytestmark = pytest.mark.skipif(not (PACKAGES / "shapes-cls" / "model.json").exists(), reason="demo models not built")
PARAMS = inference_pb2.InferenceParameters(confidence=0.3)


async def test_the_fused_call_runs_where_both_models_are_held_and_else_falls_back(
        tmp_path: Path, redis_url: str, namespace: str) -> None:
    h = await start_worker(tmp_path, redis_url, namespace, artifact_roots=str(PACKAGES))
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    gateway, pool = gateway_over(f"127.0.0.1:{h.runner.port}")
    pool.discovery = StaticDiscovery([f"127.0.0.1:{h.runner.port}", dead])
    live, gone = pool.endpoints[f"127.0.0.1:{h.runner.port}"], pool._add(dead)
    det = descriptor(PACKAGES / "shapes-det", "shapes-det/1")
    cls = descriptor(PACKAGES / "shapes-cls", "shapes-cls/1")
    image = inference_pb2.Image(encoded=encode(generate_scene(SEEDS[3]).image))

    async def call() -> worker_pb2.ModelWorkerServiceInferCropsResponse | None:
        return await fused.infer_crops(gateway, det, image, PARAMS, cls, inference_pb2.InferenceParameters(), 64,
                                       time.monotonic() + 30)

    try:
        assert await call() is None  # no worker is known to hold both: nothing was called
        await h.stub.LoadModel(worker_pb2.LoadModelRequest(model=det))
        live.found_serving(det.model_id, det.sha256)
        live.found_serving(cls.model_id, cls.sha256)  # believed, but the classifier is not loaded there
        assert await call() is None and {m.model_id for m in h.worker.manager.models()} == {"shapes-det/1"}
        assert live.holds(det.model_id, det.sha256) and not live.holds(cls.model_id, cls.sha256)  # learnt which

        gone.found_serving(det.model_id, det.sha256)
        gone.found_serving(cls.model_id, cls.sha256)
        assert await call() is None and gone.failed  # unreachable: out of rotation, and the steps run one by one

        await h.stub.LoadModel(worker_pb2.LoadModelRequest(model=cls))
        live.found_serving(cls.model_id, cls.sha256)
        reply = await call()
        assert reply is not None and not reply.not_loaded
        assert len(reply.crops.items) == len(reply.detections.object_detection.detections) > 1
    finally:
        await pool.close()
        await h.runner.stop()
