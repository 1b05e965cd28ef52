"""A small synchronous client over the generated stubs (what the README's example shows)."""

from __future__ import annotations

from pathlib import Path

import grpc

from fleet.v1 import gateway_pb2, gateway_pb2_grpc, inference_pb2

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024


def build_request(model_id: str, image: bytes | str | Path, *, confidence: float | None = None,
                  iou_threshold: float | None = None, max_detections: int | None = None,
                  class_filter: list[str] | None = None, class_agnostic_nms: bool = False,
                  visualize: bool = False) -> inference_pb2.InferRequest:
    """An InferRequest for encoded bytes, a file path, or an http(s) URL string."""
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        img = inference_pb2.Image(url=image)
    else:
        img = inference_pb2.Image(encoded=image if isinstance(image, bytes) else Path(image).read_bytes())
    params = inference_pb2.InferenceParameters(
        class_filter=class_filter or [], class_agnostic_nms=class_agnostic_nms, visualize=visualize
    )
    if confidence is not None:
        params.confidence = confidence
    if iou_threshold is not None:
        params.iou_threshold = iou_threshold
    if max_detections is not None:
        params.max_detections = max_detections
    return inference_pb2.InferRequest(model_id=model_id, image=img, parameters=params)


class FleetClient:
    def __init__(self, address: str, api_key: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.channel = grpc.insecure_channel(address, options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ])
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {api_key}"),)

    def infer(self, model_id: str, image: bytes | str | Path, timeout: float = 30.0,
              **params: object) -> inference_pb2.InferResponse:
        return self.stub.Infer(build_request(model_id, image, **params), metadata=self.metadata, timeout=timeout)

    def describe_models(self) -> gateway_pb2.DescribeModelsResponse:
        return self.stub.DescribeModels(gateway_pb2.DescribeModelsRequest(), metadata=self.metadata, timeout=30)

    def server_info(self) -> gateway_pb2.GetServerInfoResponse:
        return self.stub.GetServerInfo(gateway_pb2.GetServerInfoRequest(), metadata=self.metadata, timeout=30)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> FleetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
