"""InferStream with a client that sends and never reads: the gateway pushes back instead of buffering,
and cancelling the stream stops its work in the gateway and on the worker. Real processes."""

from __future__ import annotations

import threading
import time

import cv2
import grpc
import psutil
import pytest

from fleet.client import FleetClient, build_request
from fleet.v1 import gateway_pb2
from services.demo.scenes import generate_scene
from services.local.processes import LocalFleet
from tests.e2e.probes import metric

pytestmark = pytest.mark.slow

FRAMES = 5_000
RSS_BOUND_MB = 50


def _worker_work(client: FleetClient, model_id: str = "shapes-det/1") -> tuple[int, int]:
    """Requests the workers have finished for the model, and how many they hold now (DescribeModels)."""
    models = [m for m in client.describe_models().models if m.model_id == model_id]
    return sum(m.request_count for m in models), sum(m.in_flight for m in models)


def _settled(read, still_s: float, timeout_s: float) -> float:  # noqa: ANN001 - read: () -> float
    """Poll ``read`` until its value stays the same for ``still_s``; returns it."""
    deadline = time.monotonic() + timeout_s
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= still_s:
            return value
    raise AssertionError(f"still changing after {timeout_s}s (last {value})")


def test_a_client_that_never_reads_is_slowed_not_buffered_and_cancel_stops_the_work(
        fleet: LocalFleet, client: FleetClient) -> None:
    image = cv2.imencode(".jpg", generate_scene(9_200_000).image[:, :, ::-1])[1].tobytes()
    request = build_request("shapes-det/1", image, visualize=True)
    frame = gateway_pb2.InferStreamRequest(correlation_id="warm", request=request)
    # Warm the gateway's and worker's paths (model loaded, pools grown) before the baseline.
    warm = list(client.stub.InferStream(iter([frame] * 32), metadata=client.metadata, timeout=120))
    answer_kib = warm[0].ByteSize() / 1024
    assert len(warm) == 32 and warm[0].response.visualization
    gateway = psutil.Process(fleet.gateway.pid)
    baseline = gateway.memory_info().rss
    pauses_before = metric(fleet.gateway, "fleet_gateway_stream_backpressure_total")

    sent = 0

    def frames():  # noqa: ANN202 - the request stream: 5,000 frames, counted as gRPC takes them
        nonlocal sent
        for i in range(FRAMES):
            sent += 1
            yield gateway_pb2.InferStreamRequest(correlation_id=str(i), request=request)

    call = client.stub.InferStream(frames(), metadata=client.metadata, timeout=300)  # never read
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, gateway.memory_info().rss)
            stop.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        # The stream stalls: the gateway stops reading, so gRPC stops taking frames from the client.
        stalled_at = _settled(lambda: sent, still_s=3.0, timeout_s=90)
        served = _settled(lambda: _worker_work(client)[0], still_s=2.0, timeout_s=60)
        time.sleep(3)  # stay stalled a while: nothing grows
        grown_mb = (peak - baseline) / 2**20
        print(f"\nanswer {answer_kib:.0f} KiB; frames taken by gRPC before the stall: {stalled_at} of {FRAMES}; "
              f"worker inferences {served:.0f}; gateway RSS {baseline / 2**20:.0f} MiB -> peak "
              f"{peak / 2**20:.0f} MiB (+{grown_mb:.1f} MiB)")
        assert stalled_at < FRAMES / 4, "the gateway kept reading a stream whose answers nobody took"
        assert grown_mb <= RSS_BOUND_MB
        assert metric(fleet.gateway, "fleet_gateway_stream_backpressure_total") > pauses_before
    finally:
        call.cancel()
        stop.set()
        sampler.join()
    # Cancelling ends the stream's work: the gateway holds no calls to the worker, the worker computes nothing more.
    in_flight = _settled(lambda: metric(fleet.gateway, "fleet_gateway_worker_in_flight"), still_s=1.0, timeout_s=30)
    assert in_flight == 0
    after = _settled(lambda: _worker_work(client)[0], still_s=2.0, timeout_s=30)
    print(f"worker inferences after cancel: {after:.0f} (+{after - served:.0f})")
    assert after - served <= 64  # at most what was already held by the stream
    assert _worker_work(client)[1] == 0  # nothing in flight or queued on the worker
    with pytest.raises(grpc.RpcError) as err:
        next(iter(call))
    assert err.value.code() == grpc.StatusCode.CANCELLED
    assert client.infer("shapes-det/1", image).object_detection.detections  # the fleet serves on
