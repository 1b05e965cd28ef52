"""A small synchronous client over the generated stubs (what the README's example shows)."""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from fleet.paths import client_state_file
from fleet.v1 import gateway_pb2, gateway_pb2_grpc, inference_pb2

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
Pem = bytes | str | Path  # PEM bytes, or the path of a PEM file


def _pem(value: Pem | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def read_state(path: str | Path | None = None) -> dict:
    """What ``fleet up`` saved (``--state-file``, or the default one): addresses, dev API key, CA path."""
    state = Path(path) if path else client_state_file()
    return json.loads(state.read_text()) if state.exists() else {}


def channel_credentials(ca: Pem | None = None, cert: Pem | None = None,
                        key: Pem | None = None) -> grpc.ChannelCredentials | None:
    """TLS credentials trusting ``ca`` (None: the system's roots), with a client certificate for mTLS."""
    if ca is None and cert is None:
        return None
    return grpc.ssl_channel_credentials(root_certificates=_pem(ca), private_key=_pem(key),
                                        certificate_chain=_pem(cert))


ImageSource = bytes | str | Path
_MASK_FORMATS = {"outline": inference_pb2.MASK_FORMAT_UNSPECIFIED, "polygons": inference_pb2.MASK_FORMAT_POLYGONS,
                 "rle": inference_pb2.MASK_FORMAT_RLE}


def image_message(image: ImageSource) -> inference_pb2.Image:
    """Encoded bytes, a file path, or an http(s) URL string."""
    if isinstance(image, str) and image.startswith(("http://", "https://")):
        return inference_pb2.Image(url=image)
    return inference_pb2.Image(encoded=image if isinstance(image, bytes) else Path(image).read_bytes())


def build_parameters(*, confidence: float | None = None, iou_threshold: float | None = None,
                     max_detections: int | None = None, class_filter: list[str] | None = None,
                     class_agnostic_nms: bool | None = None, visualize: bool = False, top_k: int | None = None,
                     mask_format: str = "outline") -> inference_pb2.InferenceParameters:
    """InferenceParameters; None leaves a field unset (the model's default)."""
    params = inference_pb2.InferenceParameters(class_filter=class_filter or [], visualize=visualize,
                                               mask_format=_MASK_FORMATS[mask_format])
    for name, value in (("confidence", confidence), ("iou_threshold", iou_threshold),
                        ("max_detections", max_detections), ("class_agnostic_nms", class_agnostic_nms),
                        ("top_k", top_k)):
        if value is not None:
            setattr(params, name, value)
    return params


Point = tuple[float, float] | tuple[float, float, bool]  # x, y[, negative]
Box = tuple[float, float, float, float]  # centre x, centre y, width, height


def build_inputs(texts: list[str] | None = None, points: list[Point] | None = None, boxes: list[Box] | None = None,
                 *, text_input: str = "text", points_input: str = "points",
                 boxes_input: str = "boxes") -> dict[str, inference_pb2.InputValue]:
    """A request's typed inputs by the names the demo packages declare (an embedding model's ``text``, a
    promptable-segmentation model's ``points`` and ``boxes``); pixels of the original image."""
    inputs = {}
    if texts:
        inputs[text_input] = inference_pb2.InputValue(texts=inference_pb2.Texts(values=list(texts)))
    if points:
        inputs[points_input] = inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[
            inference_pb2.PointPrompt(x=p[0], y=p[1], negative=bool(p[2]) if len(p) > 2 else False)  # type: ignore[misc]
            for p in points]))
    if boxes:
        inputs[boxes_input] = inference_pb2.InputValue(boxes=inference_pb2.BoxPrompts(boxes=[
            inference_pb2.BoxPrompt(x=x, y=y, width=w, height=h) for x, y, w, h in boxes]))
    return inputs


def build_request(model_id: str, image: ImageSource | None, inputs: dict[str, inference_pb2.InputValue] | None = None,
                  **params: object) -> inference_pb2.InferRequest:
    """An InferRequest for one image (None: inputs only, e.g. texts to embed) and typed ``inputs`` (see
    ``build_inputs``; ``build_parameters`` for the parameters)."""
    request = inference_pb2.InferRequest(model_id=model_id, parameters=build_parameters(**params),  # type: ignore[arg-type]
                                         inputs=inputs or {})
    if image is not None:
        request.image.CopyFrom(image_message(image))
    return request


class FleetClient:
    """The gateway over plaintext, or over TLS when ``ca`` (or ``tls=True``: the system's roots) is given.

    ``cert``/``key`` present a client certificate, for gateways that require one.
    ``FleetClient.from_state()`` connects to the fleet ``fleet up`` runs, with its key and CA.
    """

    def __init__(self, address: str, api_key: str, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, *,
                 ca: Pem | None = None, cert: Pem | None = None, key: Pem | None = None, tls: bool = False,
                 server_name: str | None = None) -> None:
        options: list[tuple[str, object]] = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        credentials = channel_credentials(ca, cert, key) or (grpc.ssl_channel_credentials() if tls else None)
        self.channel = (grpc.secure_channel(address, credentials, options=options) if credentials
                        else grpc.insecure_channel(address, options=options))
        self.stub = gateway_pb2_grpc.GatewayServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {api_key}"),)

    @classmethod
    def from_state(cls, path: str | Path | None = None, **kwargs: object) -> FleetClient:
        """A client of the fleet ``fleet up`` started: its gateway, dev API key and CA, from its state file."""
        state = read_state(path)
        if not state:
            raise FileNotFoundError(f"no fleet state at {path or client_state_file()}; start one with `fleet up`")
        return cls(state_address(state), state["api_key"], ca=state.get("ca") or None, **kwargs)  # type: ignore[arg-type]

    def infer(self, model_id: str, image: bytes | str | Path | None, timeout: float = 30.0,
              inputs: dict[str, inference_pb2.InputValue] | None = None, **params: object) -> inference_pb2.InferResponse:
        """One request: an image and/or typed ``inputs`` (``build_inputs``: texts, point and box prompts)."""
        return self.stub.Infer(build_request(model_id, image, inputs, **params), metadata=self.metadata,
                               timeout=timeout)

    def compare(self, model_id: str, image: bytes | str | Path, prompts: list[str],
                timeout: float = 30.0) -> list[tuple[str, float]]:
        """An embedding model's cosine similarity of the image with each text prompt, best first."""
        response = self.infer(model_id, image, timeout, build_inputs(texts=prompts))
        return sorted(((s.prompt, s.similarity) for s in response.embedding.similarities), key=lambda p: -p[1])

    def infer_batch(self, model_id: str, images: list[ImageSource], timeout: float = 60.0,
                    **params: object) -> inference_pb2.InferBatchResponse:
        """Several images in one call: one item per image, in order (a response or that image's error)."""
        request = inference_pb2.InferBatchRequest(model_id=model_id, images=[image_message(i) for i in images],
                                                  parameters=build_parameters(**params))  # type: ignore[arg-type]
        return self.stub.InferBatch(request, metadata=self.metadata, timeout=timeout)

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


def state_address(state: dict) -> str:
    """The gateway's gRPC address in a state file (``address`` in files from older versions)."""
    return state.get("grpc_address") or state.get("address") or ""
