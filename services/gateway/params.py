"""Task parameters as the non-protobuf edges receive them (strings, JSON numbers) -> fleet.v1.InferenceParameters.

Only types are checked here; ranges are checked once, by the worker, so every edge answers a bad
value with the same message.
"""

from __future__ import annotations

from collections.abc import Iterable

from fleet.v1 import inference_pb2
from services.common.errors import InvalidArgument

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
UINT32_MAX = 2**32 - 1


def as_float(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise InvalidArgument(f"{name} must be a number, got {value!r}")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} must be a number, got {value!r}") from None


def as_int(name: str, value: object) -> int:
    number = as_float(name, value)
    if not number.is_integer():
        raise InvalidArgument(f"{name} must be a whole number, got {value!r}")
    if not 0 <= number <= UINT32_MAX:
        raise InvalidArgument(f"{name} must be a positive whole number, got {value!r}")
    return int(number)


def as_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidArgument(f"{name} must be true or false, got {value!r}")


def as_names(name: str, value: object) -> list[str]:
    """Class names: a list, or one comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [n.strip() for n in value.split(",") if n.strip()]
    if isinstance(value, Iterable) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidArgument(f"{name} must be a list of class names, got {value!r}")


READERS = {"number": as_float, "whole": as_int, "bool": as_bool, "names": as_names}


def set_parameter(params: inference_pb2.InferenceParameters, name: str, kind: str, value: object) -> None:
    """Set the InferenceParameters field ``name`` from a loosely typed value, read as ``kind`` (a key of
    ``READERS``: a task's ``OipParameter``); ``None`` leaves it to the model's default."""
    if value is None:
        return
    read = READERS[kind](name, value)
    if kind == "names":
        getattr(params, name)[:] = read
    else:
        setattr(params, name, read)


def inference_parameters(*, confidence: object = None, iou_threshold: object = None, max_detections: object = None,
                         max_candidates: object = None, class_filter: object = None,
                         class_agnostic_nms: object = None, visualize: object = None) -> inference_pb2.InferenceParameters:
    """InferenceParameters from loosely typed values; ``None`` leaves a field to the model's default."""
    params = inference_pb2.InferenceParameters(class_filter=as_names("class_filter", class_filter))
    if confidence is not None:
        params.confidence = as_float("confidence", confidence)
    if iou_threshold is not None:
        params.iou_threshold = as_float("iou_threshold", iou_threshold)
    if max_detections is not None:
        params.max_detections = as_int("max_detections", max_detections)
    if max_candidates is not None:
        params.max_candidates = as_int("max_candidates", max_candidates)
    if class_agnostic_nms is not None:
        params.class_agnostic_nms = as_bool("class_agnostic_nms", class_agnostic_nms)
    if visualize is not None:
        params.visualize = as_bool("visualize", visualize)
    return params
