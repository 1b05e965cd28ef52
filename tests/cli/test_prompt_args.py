"""``fleet infer``'s prompt flags and the typed inputs they become."""

from __future__ import annotations

import argparse

import pytest

from fleet.cli.commands import box_arg, point_arg
from fleet.client import build_inputs, build_request


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
