"""Test helpers: the pipelines' gRPC API as the caller, frames of a video file, detections compared."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from pathlib import Path

import cv2
import grpc
import numpy as np

from fleet.v1 import inference_pb2, pipelines_pb2, pipelines_pb2_grpc
from fleet.client import FleetClient


def stub(address: str) -> pipelines_pb2_grpc.PipelineServiceStub:
    return pipelines_pb2_grpc.PipelineServiceStub(grpc.insecure_channel(address))


def auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def create(service: pipelines_pb2_grpc.PipelineServiceStub, key: str, references: list[str], max_fps: float = 0,
           model_id: str = "shapes-det/1", buffer: int = 0) -> pipelines_pb2.PipelineInfo:
    request = pipelines_pb2.CreatePipelineRequest(
        sources=[pipelines_pb2.VideoSource(reference=r) for r in references], model_id=model_id, max_fps=max_fps,
        results_buffer_size=buffer)
    return service.CreatePipeline(request, metadata=auth(key), timeout=30).pipeline


def report(service: pipelines_pb2_grpc.PipelineServiceStub, key: str, pipeline_id: str) -> dict:
    info = service.GetPipeline(pipelines_pb2.GetPipelineRequest(pipeline_id=pipeline_id), metadata=auth(key),
                               timeout=10).pipeline
    return json.loads(info.report_json)


def frames_of(path: Path) -> list[np.ndarray]:
    """Every frame of a video file, RGB, decoded as the pipelines service decodes it."""
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def infer_frame(client: FleetClient, pixels: np.ndarray) -> list[tuple]:
    """``Infer`` on one frame (raw pixels, as the pipeline sends them): its detections, comparable."""
    height, width = pixels.shape[:2]
    image = inference_pb2.Image(raw=inference_pb2.RawImage(data=pixels.tobytes(), width=width, height=height,
                                                           channels=3))
    reply = client.stub.Infer(inference_pb2.InferRequest(model_id="shapes-det/1", image=image),
                              metadata=client.metadata, timeout=30)
    return sorted((d.class_name, round(d.x, 1), round(d.y, 1), round(d.width, 1), round(d.height, 1),
                   round(d.confidence, 3)) for d in reply.object_detection.detections)


def detections_of(outputs: dict) -> list[tuple]:
    """The same tuples from a pipeline result's Roboflow-shaped predictions."""
    return sorted((p["class"], round(p["x"], 1), round(p["y"], 1), round(p["width"], 1), round(p["height"], 1),
                   round(p["confidence"], 3)) for p in outputs["predictions"]["predictions"])


class Camera:
    """A client pushing frames as a camera takes them (``fps`` a second, each stamped when taken), over one
    PushFrames stream at a time, in threads, until ``stop``. A frame is kept until a replica acknowledges it:
    when a stream ends UNAVAILABLE (its replica drained) the camera pushes again to the next address, the
    frames not acknowledged first, so no frame it took is lost on its side."""

    def __init__(self, addresses: list[str], key: str, pipeline_id: str, jpegs: list[bytes],
                 fps: float = 10.0) -> None:
        self.addresses, self.key, self.pipeline_id, self.jpegs, self.fps = addresses, key, pipeline_id, jpegs, fps
        self.acks: list[tuple[float, int, float]] = []  # (when, frame id, captured_at)
        self.errors: list[grpc.StatusCode] = []  # how each stream but the last ended
        self.error: grpc.RpcError | None = None  # what ended the last stream, when not a stop
        self._queue: deque[float] = deque()  # captured_at of frames taken, not yet sent
        self._cond = threading.Condition()
        self.done = threading.Event()
        self._threads = [threading.Thread(target=self._capture, daemon=True),
                         threading.Thread(target=self._send, daemon=True)]
        for thread in self._threads:
            thread.start()

    def _capture(self) -> None:
        next_at = time.time()
        while not self.done.wait(max(0.0, next_at - time.time())):
            with self._cond:
                self._queue.append(time.time())
                self._cond.notify()
            next_at += 1.0 / self.fps

    def _send(self) -> None:
        for i in itertools.count():
            error = self._stream(self.addresses[i % len(self.addresses)])
            if error is None or self.done.is_set() or error.code() != grpc.StatusCode.UNAVAILABLE:
                self.error = error
                return
            self.errors.append(error.code())

    def _stream(self, address: str) -> grpc.RpcError | None:
        sent: deque[float] = deque()  # sent on this stream, not yet acknowledged
        closed = False

        def requests():  # noqa: ANN202
            while True:
                with self._cond:
                    while not self._queue and not closed and not self.done.is_set():
                        self._cond.wait(0.05)
                    if closed or self.done.is_set():
                        return
                    captured_at = self._queue.popleft()
                    sent.append(captured_at)
                image = self.jpegs[int(captured_at * self.fps) % len(self.jpegs)]
                yield pipelines_pb2.PushFramesRequest(pipeline_id=self.pipeline_id, source_id="0", image=image,
                                                      captured_at=captured_at)

        call = stub(address).PushFrames(requests(), metadata=auth(self.key))
        try:
            for ack in call:
                with self._cond:
                    self.acks.append((time.time(), ack.frame_id, sent.popleft()))
            return None
        except grpc.RpcError as exc:
            with self._cond:
                closed = True
                self._queue.extendleft(reversed(sent))  # pushed again first, on the next stream
            return exc

    def stop(self) -> None:
        self.done.set()
        for thread in self._threads:
            thread.join(30)
