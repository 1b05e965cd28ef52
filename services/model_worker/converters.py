"""fleet.v1 protobuf <-> the worker's domain objects."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from fleet.internal.v1.worker_pb2 import WorkerState
from fleet.v1 import inference_pb2, model_pb2
from services.common.errors import FleetError, InvalidArgument, InvalidImage
from services.common.model_spec import InputKind, ModelSpec
from services.common.rpc_errors import error_status
from services.model_worker import inputs
from services.model_worker.images import ImageInput, RawPixels
from services.model_worker.held_model import HeldModel
from services.model_worker.model_types import model_type
from services.tasks import registry as tasks
from services.model_worker.pipeline import InferenceOutput
from services.model_worker.processing.params import InferenceParams, MaskFormat

_MASK_FORMAT = {inference_pb2.MASK_FORMAT_UNSPECIFIED: MaskFormat.OUTLINE,
                inference_pb2.MASK_FORMAT_POLYGONS: MaskFormat.POLYGONS, inference_pb2.MASK_FORMAT_RLE: MaskFormat.RLE}


def image_from_proto(image: inference_pb2.Image) -> ImageInput:
    source = image.WhichOneof("source")
    if source == "encoded":
        return ImageInput(encoded=image.encoded)
    if source == "url":
        return ImageInput(url=image.url)
    if source == "raw":
        r = image.raw
        return ImageInput(raw=RawPixels(r.data, r.width, r.height, r.channels,
                                        bgr=r.color_order == model_pb2.COLOR_ORDER_BGR))
    raise InvalidImage("the request carries no image: set image.encoded, image.url or image.raw")


def inputs_from_proto(request: inference_pb2.InferRequest, spec: ModelSpec, model_id: str) -> inputs.Inputs:
    """The request's image and typed inputs, validated against the model's declaration."""
    values: dict[str, tuple[InputKind, inputs.Value, int]] = {}
    first_image = next((d.name for d in spec.declared_inputs if d.kind == InputKind.IMAGE), "image")
    if request.HasField("image") and request.image.WhichOneof("source") is not None:
        values[first_image] = (InputKind.IMAGE, image_from_proto(request.image), 1)
    for name, value in request.inputs.items():
        kind = value.WhichOneof("value")
        if name in values:
            raise InvalidArgument(f"input {name!r} is sent twice (as InferRequest.image and in inputs)")
        if kind == "image":
            values[name] = (InputKind.IMAGE, image_from_proto(value.image), 1)
        elif kind == "texts":
            values[name] = (InputKind.TEXTS, inputs.texts(list(value.texts.values), name), len(value.texts.values))
        elif kind == "points":
            pts = value.points.points
            values[name] = (InputKind.POINTS, inputs.points([(p.x, p.y) for p in pts], [not p.negative for p in pts],
                                                            name), len(pts))
        elif kind == "boxes":
            bxs = value.boxes.boxes
            values[name] = (InputKind.BOXES, inputs.boxes([(b.x, b.y, b.width, b.height) for b in bxs], name),
                            len(bxs))
        elif kind == "tensor":
            t = value.tensor
            values[name] = (InputKind.TENSOR, inputs.tensor(t.datatype, list(t.shape), t.data, name), 1)
        else:
            raise InvalidArgument(f"input {name!r} carries no value")
    return inputs.check(spec, values, model_id)


def image_or_error(image: inference_pb2.Image) -> ImageInput | FleetError:
    """One image of a batch: its input, or why it is unusable (answered for that image alone)."""
    try:
        return image_from_proto(image)
    except FleetError as exc:
        return exc


def params_from_proto(p: inference_pb2.InferenceParameters) -> InferenceParams:
    return InferenceParams(
        confidence=p.confidence if p.HasField("confidence") else None,
        iou_threshold=p.iou_threshold if p.HasField("iou_threshold") else None,
        class_agnostic_nms=p.class_agnostic_nms if p.HasField("class_agnostic_nms") else None,
        max_detections=p.max_detections if p.HasField("max_detections") else None,
        max_candidates=p.max_candidates if p.HasField("max_candidates") else None,
        class_filter=tuple(p.class_filter),
        visualize=p.visualize,
        top_k=p.top_k if p.HasField("top_k") else None,
        mask_format=_MASK_FORMAT.get(p.mask_format, MaskFormat.OUTLINE),
    )


def response_to_proto(out: InferenceOutput, worker_id: str) -> inference_pb2.InferResponse:
    spec = out.record.spec
    t = out.timings
    task = model_type(spec).task
    response = inference_pb2.InferResponse(
        inference_id=out.inference_id, model_id=out.record.model_id, task_type=task.proto,
        image_width=out.width, image_height=out.height, visualization=out.visualization, worker_id=worker_id,
        timings=inference_pb2.StageTimings(
            decode_ms=t.decode_s * 1e3, preprocess_ms=t.preprocess_s * 1e3, queue_ms=t.queue_s * 1e3,
            inference_ms=t.inference_s * 1e3, postprocess_ms=t.postprocess_s * 1e3, worker_ms=t.total_s * 1e3,
            batch_size=t.batch_size, cold_start=t.cold_start,
        ),
    )
    task.set_result(response, out.message)
    return response


def batch_item_to_proto(outcome: InferenceOutput | FleetError, worker_id: str) -> inference_pb2.InferBatchItem:
    if isinstance(outcome, FleetError):
        return inference_pb2.InferBatchItem(error=error_status(outcome))
    return inference_pb2.InferBatchItem(response=response_to_proto(outcome, worker_id))


def _ts(unix: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(unix * 1e9))
    return ts


def loaded_to_proto(model: HeldModel, worker_id: str) -> model_pb2.LoadedModel:
    spec = model.record.spec
    return model_pb2.LoadedModel(
        model_id=model.model_id, task_type=tasks.get(spec.task_type).proto, task=spec.task_type,
        model_type=spec.model_type,
        worker_id=worker_id, size_bytes=model.size_bytes, loaded_at=_ts(model.loaded_at),
        last_used_at=_ts(model.last_used), request_count=model.request_count, load_seconds=model.load_seconds,
        execution_provider=model.session.provider, pinned=model.pinned, sha256=model.sha256,
        workspace=model.record.workspace, in_flight=model.in_flight, queued=model.batcher.queued,
        requests_per_second=model.meter.rate,
    )


def worker_load(state: WorkerState) -> model_pb2.WorkerLoad:
    """The public summary of a worker's state (the gateway shows its address to admins only)."""
    return model_pb2.WorkerLoad(
        worker_id=state.worker_id, address=state.address, loaded_models=len(state.models), max_models=state.max_models,
        loaded_bytes=state.loaded_bytes, capacity_bytes=state.capacity_bytes,
        in_flight=sum(m.in_flight for m in state.models), queued=sum(m.queued for m in state.models),
        execution_providers=list(state.execution_providers), memory_free_fraction=state.memory_free_fraction,
        draining=state.draining,
    )
