"""``fleet infer``'s NMS flags and class filter, declared by the detection family (``services.tasks.boxes``), become
the InferenceParameters they always did; left out, they leave the model's defaults."""

from __future__ import annotations

import argparse

from fleet.cli import commands
from fleet.client import build_parameters
from fleet.v1 import inference_pb2
from services.tasks import registry
from services.tasks.boxes import NMS_FLAGS


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fleet")
    commands.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["infer", "x.jpg", "--model", "m", *argv])


def test_the_flags_set_the_fields() -> None:
    args = _parse("--iou", "0.5", "--max-detections", "3", "--class", "circle", "--class", "square", "--agnostic",
                  "--confidence", "0.2")
    assert build_parameters(**commands.parameters(args)) == inference_pb2.InferenceParameters(
        confidence=0.2, iou_threshold=0.5, max_detections=3, class_filter=["circle", "square"],
        class_agnostic_nms=True)


def test_left_out_they_leave_the_models_defaults() -> None:
    params = build_parameters(**commands.parameters(_parse()))
    assert not params.HasField("iou_threshold") and not params.HasField("max_detections")
    assert not params.HasField("class_agnostic_nms") and not params.class_filter  # no --agnostic: not "false"


def test_object_detection_declares_them_once_for_the_family() -> None:
    assert registry.get("object-detection").cli_parameters == NMS_FLAGS
    flags = [a.option_strings[0] for a in _infer_actions() if a.option_strings]
    for flag in ("--iou", "--max-detections", "--class", "--agnostic"):
        assert flags.count(flag) == 1
    assert flags.index("--confidence") < flags.index("--iou") < flags.index("--agnostic") < flags.index("--top-k")


def _infer_actions() -> list[argparse.Action]:
    sub = argparse.ArgumentParser(prog="fleet").add_subparsers(dest="command")
    commands.add_parsers(sub)
    return sub.choices["infer"]._actions
