"""ModelRecord <-> fleet.internal.v1.ModelDescriptor (the form services exchange), and the public summary.

A descriptor carries the whole validated model.json (``spec_json``, ModelSpec's own JSON codec): a worker
reads the model from it. Its other fields repeat what the gateway routes and answers by (task, classes,
input size, the version's sha256), and are how descriptors without ``spec_json`` are read.
"""

from __future__ import annotations

import json
from collections import OrderedDict

from pydantic import ValidationError

from fleet.internal.v1 import descriptor_pb2
from fleet.v1 import model_pb2
from services.common.errors import InvalidArgument
from services.common.model_record import ModelRecord
from services.common.model_spec import Anchor, ColorOrder, Interpolation, ModelSpec, ResizeMode
from services.tasks import registry as tasks
_RESIZE = {ResizeMode.LETTERBOX: descriptor_pb2.RESIZE_MODE_LETTERBOX, ResizeMode.STRETCH: descriptor_pb2.RESIZE_MODE_STRETCH,
           ResizeMode.CENTER_CROP: descriptor_pb2.RESIZE_MODE_CENTER_CROP}
_RESIZE_BACK = {v: k for k, v in _RESIZE.items()}
# The enum fields summarise; spec_json carries the exact mode and filter (what workers read). Modes and
# filters the enums lack are summarised by their nearest: a centre crop, bilinear, bicubic.
_RESIZE[ResizeMode.RESIZE_CENTER_CROP] = descriptor_pb2.RESIZE_MODE_CENTER_CROP
_COLOR = {ColorOrder.RGB: model_pb2.COLOR_ORDER_RGB, ColorOrder.BGR: model_pb2.COLOR_ORDER_BGR}
_COLOR_BACK = {v: k for k, v in _COLOR.items()}
_INTERPOLATION = {
    Interpolation.LINEAR: descriptor_pb2.INTERPOLATION_LINEAR, Interpolation.AREA: descriptor_pb2.INTERPOLATION_AREA,
    Interpolation.CUBIC: descriptor_pb2.INTERPOLATION_CUBIC, Interpolation.LANCZOS: descriptor_pb2.INTERPOLATION_LANCZOS,
    Interpolation.NEAREST: descriptor_pb2.INTERPOLATION_NEAREST,
}
_INTERPOLATION_BACK = {v: k for k, v in _INTERPOLATION.items()}
_INTERPOLATION.update({Interpolation.PIL_BILINEAR: descriptor_pb2.INTERPOLATION_LINEAR,
                       Interpolation.PIL_BICUBIC: descriptor_pb2.INTERPOLATION_CUBIC})
_ANCHOR = {Anchor.CENTER: descriptor_pb2.LETTERBOX_ANCHOR_CENTER, Anchor.TOP_LEFT: descriptor_pb2.LETTERBOX_ANCHOR_TOP_LEFT}
_ANCHOR_BACK = {v: k for k, v in _ANCHOR.items()}


def input_declarations(spec: ModelSpec) -> list[model_pb2.InputDeclaration]:
    return [model_pb2.InputDeclaration(name=i.name, kind=i.kind.value, required=i.required, max_items=i.max_items)
            for i in spec.declared_inputs]


def to_proto(record: ModelRecord) -> descriptor_pb2.ModelDescriptor:
    spec = record.spec
    inp = spec.input
    return descriptor_pb2.ModelDescriptor(
        model_id=record.model_id,
        task_type=tasks.get(spec.task_type).proto,
        task=spec.task_type,
        spec_json=spec.model_dump_json(),
        model_type=spec.model_type,
        artifact_uri=record.artifact_uri,
        sha256=spec.sha256,
        class_names=list(spec.class_names),
        input=descriptor_pb2.InputSpec(
            name=inp.name or "", width=inp.width, height=inp.height, resize_mode=_RESIZE[inp.resize_mode],
            color_order=_COLOR[inp.color_order], pad_value=inp.pad_value, scale=inp.scale,
            mean=list(inp.mean), std=list(inp.std), interpolation=_INTERPOLATION[inp.interpolation],
            anchor=_ANCHOR[inp.anchor],
        ),
        workspace=record.workspace,
        output_names=list(spec.outputs),
        max_batch_size=spec.batch.max_batch_size,
        multi_label=spec.multi_label,
        defaults=descriptor_pb2.TaskDefaults(
            confidence=spec.defaults.confidence, iou_threshold=spec.defaults.iou_threshold,
            max_detections=spec.defaults.max_detections, class_agnostic_nms=spec.defaults.class_agnostic_nms,
            top_k=spec.defaults.top_k or 0,
        ),
        keypoints=descriptor_pb2.KeypointSpec(
            names=list(spec.keypoints.names), dims=spec.keypoints.dims,
            skeleton=[descriptor_pb2.KeypointSpec.Edge(start=a, end=b) for a, b in spec.keypoints.skeleton],
        ) if spec.keypoints else None,
        aliases=list(record.aliases),
        public=record.public,
        size_bytes=spec.weights.size_bytes or 0,
        metadata={
            "name": spec.name,
            "provenance": json.dumps(spec.provenance, sort_keys=True),
            "metrics": json.dumps(spec.metrics, sort_keys=True),
        },
    )


def summary(d: descriptor_pb2.ModelDescriptor) -> model_pb2.ModelSummary:
    """What a caller may see of a resolved model: no artifact URI, no owner, no internals."""
    inputs = input_declarations(ModelSpec.model_validate_json(d.spec_json)) if d.spec_json else [
        model_pb2.InputDeclaration(name="image", kind="image", required=True)]
    return model_pb2.ModelSummary(
        model_id=d.model_id, task_type=d.task_type, model_type=d.model_type, class_names=list(d.class_names),
        input_width=d.input.width, input_height=d.input.height, aliases=list(d.aliases), public=d.public,
        max_batch_size=d.max_batch_size, size_bytes=d.size_bytes, metadata=dict(d.metadata),
        task=d.task or tasks.by_proto(d.task_type).name, inputs=inputs,
    )


def _loads(text: str) -> dict:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def from_proto(d: descriptor_pb2.ModelDescriptor) -> ModelRecord:
    """Validate a descriptor received over the wire; InvalidArgument when it is malformed."""
    try:
        spec = ModelSpec.model_validate_json(d.spec_json) if d.spec_json else _spec_from_fields(d)
        if d.sha256 and d.sha256 != spec.sha256:
            raise InvalidArgument(f"model descriptor for {d.model_id!r} is inconsistent: its sha256 is not its spec's")
        return ModelRecord(
            model_id=d.model_id, workspace=d.workspace, artifact_uri=d.artifact_uri, spec=spec,
            public=d.public, aliases=tuple(d.aliases),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidArgument(f"model descriptor for {d.model_id!r} is invalid: {problems}") from None


def _spec_from_fields(d: descriptor_pb2.ModelDescriptor) -> ModelSpec:
    """A descriptor without spec_json (from an older registry): the spec from its fields."""
    task = tasks.find(d.task) if d.task else None
    if task is None:
        try:
            task = tasks.by_proto(d.task_type)
        except tasks.UnknownTask:
            raise InvalidArgument(f"model descriptor for {d.model_id!r} has no task a worker here serves") from None
    inp = d.input
    return ModelSpec(
        name=d.metadata.get("name", ""),
        task_type=task.name,
        model_type=d.model_type,
        class_names=tuple(d.class_names),
        multi_label=d.multi_label,
        input={
            "name": inp.name or None, "width": inp.width, "height": inp.height,
            "resize_mode": _RESIZE_BACK.get(inp.resize_mode, ResizeMode.LETTERBOX),
            "interpolation": _INTERPOLATION_BACK.get(inp.interpolation, Interpolation.LINEAR),
            "anchor": _ANCHOR_BACK.get(inp.anchor, Anchor.CENTER),
            "color_order": _COLOR_BACK.get(inp.color_order, ColorOrder.RGB),
            "pad_value": inp.pad_value, "scale": inp.scale or 1.0 / 255.0,
            "mean": tuple(inp.mean) or (0.0, 0.0, 0.0), "std": tuple(inp.std) or (1.0, 1.0, 1.0),
        },
        outputs=tuple(d.output_names),
        batch={"max_batch_size": max(1, d.max_batch_size)},
        defaults={
            "confidence": d.defaults.confidence, "iou_threshold": d.defaults.iou_threshold,
            "max_detections": d.defaults.max_detections or 100,
            "class_agnostic_nms": d.defaults.class_agnostic_nms, "top_k": d.defaults.top_k or None,
        } if d.HasField("defaults") else {},
        keypoints={
            "names": tuple(d.keypoints.names), "dims": d.keypoints.dims or 3,
            "skeleton": tuple((e.start, e.end) for e in d.keypoints.skeleton),
        } if d.HasField("keypoints") else None,
        weights={"sha256": d.sha256, "size_bytes": d.size_bytes or None},
        provenance=_loads(d.metadata.get("provenance", "")),
        metrics=_loads(d.metadata.get("metrics", "")),
    )


class RecordCache:
    """Parsed records of recently seen descriptors: the same model arrives with every request."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._records: OrderedDict[bytes, ModelRecord] = OrderedDict()

    def get(self, descriptor: descriptor_pb2.ModelDescriptor) -> ModelRecord:
        key = descriptor.SerializeToString(deterministic=True)
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = from_proto(descriptor)
            if len(self._records) > self.size:
                self._records.popitem(last=False)
        else:
            self._records.move_to_end(key)
        return record
