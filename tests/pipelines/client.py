"""Test helpers: the pipelines' gRPC API as the caller, frames of a video file, detections compared."""

from __future__ import annotations

import json
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
