"""OIP request parameters come from the tasks' declarations (``Task.oip_request_parameters``): the edge accepts
each once, reads it as its kind, and names the accepted ones when refusing an unknown one."""

from __future__ import annotations

import pytest

from fleet.v1 import inference_pb2
from services.common.errors import InvalidArgument
from services.gateway.oip import tensors
from services.gateway.params import READERS
from services.tasks import registry
from services.tasks.base import OIP_KINDS, OipParameter, Task


def test_the_box_tasks_parameters() -> None:
    params, bgr = tensors.options({"iou_threshold": "0.5", "max_detections": 3, "max_candidates": "7",
                                   "class_filter": "a, b", "class_agnostic_nms": "true", "confidence": 0.25,
                                   "visualize": 1, "color_order": "BGR"})
    assert bgr and params == inference_pb2.InferenceParameters(
        confidence=0.25, iou_threshold=0.5, max_detections=3, max_candidates=7, class_filter=["a", "b"],
        class_agnostic_nms=True, visualize=True)
    assert tensors.options({})[0] == inference_pb2.InferenceParameters()


@pytest.mark.parametrize(("parameters", "message"), [
    ({"iou_threshold": "x"}, "iou_threshold must be a number, got 'x'"),
    ({"max_detections": 1.5}, "max_detections must be a whole number, got 1.5"),
    ({"max_candidates": -1}, "max_candidates must be a positive whole number, got -1"),
    ({"class_filter": 3}, "class_filter must be a list of class names, got 3"),
    ({"class_agnostic_nms": "maybe"}, "class_agnostic_nms must be true or false, got 'maybe'"),
])
def test_each_is_read_as_its_kind(parameters: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace(".", r"\.")):
        tensors.options(parameters)


class _TopK(Task):
    name = "top-k-probe"
    oip_request_parameters = (OipParameter("top_k", "whole"),)


def test_a_tasks_declaration_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgument, match=r"unknown request parameters \['top_k'\]"):
        tensors.options({"top_k": 2})
    built_in = registry.all_tasks()
    monkeypatch.setattr(registry, "all_tasks", lambda: [*built_in, _TopK()])
    assert tensors.options({"top_k": "2"})[0].top_k == 2
    with pytest.raises(InvalidArgument, match="accepted: confidence, iou_threshold, .*, top_k, visualize, color_order"):
        tensors.options({"bogus": 1})


def test_one_parameter_declared_two_ways_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Other(Task):
        name = "other"
        oip_request_parameters = (OipParameter("iou_threshold", "whole"),)

    monkeypatch.setattr(registry, "all_tasks", lambda: [registry.get("object-detection"), Other()])
    with pytest.raises(ValueError, match="iou_threshold twice"):
        tensors.options({})


def test_every_kind_has_a_reader() -> None:
    assert set(READERS) == set(OIP_KINDS)
    with pytest.raises(ValueError, match="kind 'float'"):
        OipParameter("iou_threshold", "float")  # type: ignore[arg-type]
