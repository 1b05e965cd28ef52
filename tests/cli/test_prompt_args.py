"""``fleet infer``'s prompt flags (declared by the tasks: ``Task.cli_inputs``) and the typed inputs they become; its
parameter flags (``Task.cli_parameters``)."""

from __future__ import annotations

import argparse

import pytest

from fleet.cli import commands
from fleet.client import build_inputs, build_request
from services.tasks import registry
from services.tasks.base import CliParameter, Task
from services.tasks.promptable import box_arg, point_arg


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fleet")
    commands.add_parsers(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def test_point_and_box_flags() -> None:
    assert point_arg("10,20") == (10.0, 20.0, False)
    assert point_arg("1.5, 2, neg") == (1.5, 2.0, True)
    assert point_arg("3,4,pos") == (3.0, 4.0, False)
    assert box_arg("50,60,20,10") == (50.0, 60.0, 20.0, 10.0)
    for bad in ("10", "1,2,3", "a,b", "1,2,neg,4"):
        with pytest.raises(argparse.ArgumentTypeError, match="--point"):
            point_arg(bad)
    for bad in ("1,2,3", "1,2,3,x"):
        with pytest.raises(argparse.ArgumentTypeError, match="--box"):
            box_arg(bad)


def test_inputs_by_the_packages_names() -> None:
    inputs = build_inputs(["a red circle"], [(1.0, 2.0, True), (3.0, 4.0)], [(5.0, 6.0, 7.0, 8.0)])
    assert list(inputs["text"].texts.values) == ["a red circle"]
    assert [(p.x, p.y, p.negative) for p in inputs["points"].points.points] == [(1, 2, True), (3, 4, False)]
    b = inputs["boxes"].boxes.boxes[0]
    assert (b.x, b.y, b.width, b.height) == (5, 6, 7, 8)
    assert build_inputs() == {}
    request = build_request("clip", None, build_inputs(["x"]))
    assert not request.HasField("image") and list(request.inputs) == ["text"]


def test_the_tasks_flags_become_the_same_inputs_the_client_builds() -> None:
    args = _parse("infer", "x.jpg", "--model", "m", "--text", "a red circle", "--point", "1,2,neg", "--point", "3,4",
                  "--box", "5,6,7,8")
    assert commands.typed_inputs(args) == build_inputs(["a red circle"], [(1.0, 2.0, True), (3.0, 4.0)],
                                                  [(5.0, 6.0, 7.0, 8.0)])
    assert commands.typed_inputs(_parse("infer", "x.jpg", "--model", "m")) == {}
    with pytest.raises(SystemExit):
        _parse("infer", "x.jpg", "--model", "m", "--box", "1,2,3")


def test_compare_is_the_embedding_tasks_command() -> None:
    args = _parse("compare", "x.jpg", "one", "two", "--json")
    assert (args.image, args.prompt, args.model, args.json, args.timeout) == ("x.jpg", ["one", "two"], "clip", True, 60.0)
    assert callable(args.func)


def _infer_flags() -> dict[str, argparse.Action]:
    sub = argparse.ArgumentParser(prog="fleet").add_subparsers(dest="command")
    commands.add_parsers(sub)
    return {a.option_strings[0]: a for a in sub.choices["infer"]._actions if a.option_strings}


def test_parameter_flags_are_the_tasks() -> None:
    """--top-k and --mask-format, their help and choices, come from the tasks that use them (--mask-format once,
    though instance and promptable segmentation both declare it)."""
    flags = _infer_flags()
    (top_k,) = registry.get("classification").cli_parameters
    assert flags["--top-k"].help == top_k.help and top_k.help.startswith("classification: ")
    (mask,) = registry.get("instance-segmentation").cli_parameters
    assert registry.get("promptable-segmentation").cli_parameters == (mask,)
    assert flags["--mask-format"].help == mask.help and flags["--mask-format"].choices == ["outline", "polygons", "rle"]
    args = _parse("infer", "x.jpg", "--model", "m", "--top-k", "3", "--mask-format", "rle")
    assert (args.top_k, args.mask_format) == (3, "rle")
    args = _parse("infer", "x.jpg", "--model", "m")
    assert (args.top_k, args.mask_format) == (None, "outline")
    with pytest.raises(SystemExit):
        _parse("infer", "x.jpg", "--model", "m", "--mask-format", "bitmap")


def test_one_flag_declared_two_ways_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class One(Task):
        name = "one"
        cli_parameters = (CliParameter("--top-k", "top_k", "one: the best k", type=int),)

    class Two(Task):
        name = "two"
        cli_parameters = (CliParameter("--top-k", "top_k", "two: the best k", type=int),)

    monkeypatch.setattr(registry, "all_tasks", lambda: [One(), Two()])
    with pytest.raises(ValueError, match="--top-k twice"):
        _infer_flags()
