"""The blocks that need no model, on real pixels and predictions in Roboflow's shapes (the model blocks run on a
real fleet in tests/e2e/test_workflows.py)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from services.common.errors import InvalidArgument, InvalidImage
from services.workflows import kinds
from services.workflows.blocks import describe
from services.workflows.blocks.base import RunContext
from services.workflows.blocks.consensus import DetectionsConsensus
from services.workflows.blocks.crop import DynamicCrop
from services.workflows.blocks.filter import DetectionsFilter
from services.workflows.blocks.offset import DetectionOffset
from services.workflows.blocks.properties import PropertyDefinition
from services.workflows.blocks.visualize import BoundingBoxVisualization
from services.workflows.data import Detections, WImage, image_size
from tests.workflows.definitions import class_is

POOL = ThreadPoolExecutor(2)


async def cpu(fn, *args):  # noqa: ANN001, ANN002, ANN201
    return await asyncio.get_running_loop().run_in_executor(POOL, fn, *args)


def ctx(max_crops: int = 10) -> RunContext:
    return RunContext("step", None, cpu, max_crops)  # type: ignore[arg-type] - these blocks call no model


def box(cls: str, x: float, y: float, w: float, h: float, conf: float = 0.9, cid: int = 0) -> dict:
    return {"x": x, "y": y, "width": w, "height": h, "confidence": conf, "class": cls, "class_id": cid,
            "detection_id": f"{cls}-{x}-{y}"}


@pytest.fixture
def image() -> WImage:
    pixels = np.zeros((100, 200, 3), np.uint8)
    pixels[20:40, 30:70] = (0, 0, 255)
    encoded = cv2.imencode(".png", pixels)[1].tobytes()
    assert image_size(encoded) == (200, 100)
    return WImage.root(encoded, 200, 100)


def detections(image: WImage, *boxes: dict) -> Detections:
    return Detections(image, list(boxes), kinds.OBJECT_DETECTION)


async def test_crops_cut_each_box_clipped_and_know_their_place(image: WImage) -> None:
    found = detections(image, box("red", 50, 30, 40, 20), box("edge", 195, 95, 20, 20))
    (out,) = await DynamicCrop().run(ctx(), None, [{"images": image, "predictions": found}])
    red, edge = out["crops"]
    assert red.pixels.shape == (20, 40, 3) and (red.pixels == (0, 0, 255)).all()  # decoded once, cut exactly
    assert red.origin == (30, 20) and red.parent_id == image.image_id and red.image_id == "red-50-30"
    assert edge.pixels.shape == (15, 15, 3) and edge.origin == (185, 85)  # clipped to the image
    crop_box = box("inner", 10, 5, 4, 4)
    shifted = Detections(red, [crop_box], kinds.OBJECT_DETECTION).json(parent_coordinates=True)["predictions"][0]
    assert (shifted["x"], shifted["y"], shifted["parent_id"]) == (40, 25, "red-50-30")
    assert red.message().raw.width == 40 and red.message().raw.color_order == 2  # BGR pixels, not re-encoded
    assert image.message().encoded  # a root image goes as it came


async def test_too_many_crops_of_one_image_is_refused(image: WImage) -> None:
    found = detections(image, *(box("red", 10 + i, 10, 4, 4) for i in range(3)))
    with pytest.raises(InvalidArgument, match="3 crops of one image; at most 2"):
        await DynamicCrop().run(ctx(max_crops=2), None, [{"images": image, "predictions": found}])


async def test_an_image_that_cannot_be_decoded_fails_only_its_own_crops_and_drawing(image: WImage) -> None:
    broken = WImage.root(b"\x89PNG\r\n\x1a\n" + b"\0" * 40, 0, 0)
    found, nothing = detections(image, box("red", 50, 30, 40, 20)), detections(broken, box("red", 50, 30, 40, 20))
    bad, good = await DynamicCrop().run(ctx(), None, [{"images": broken, "predictions": nothing},
                                                      {"images": image, "predictions": found}])
    assert isinstance(bad, InvalidImage) and "could not be decoded" in bad.message
    assert len(good["crops"]) == 1
    drawn = await BoundingBoxVisualization().run(ctx(), None, [
        {"image": broken, "predictions": nothing, "copy_image": True, "thickness": 2},
        {"image": image, "predictions": found, "copy_image": True, "thickness": 2}])
    assert isinstance(drawn[0], InvalidImage) and drawn[1]["image"].pixels.shape == (100, 200, 3)


def test_every_block_declares_its_failure_scope() -> None:
    scopes = {b["type"]: b["failure_scope"] for b in describe()}
    assert {s["scope"] for s in scopes.values()} == {"run", "element"}
    assert all(s["meaning"] for s in scopes.values())
    assert scopes["roboflow_core/roboflow_classification_model@v1"]["scope"] == "element"
    assert scopes["roboflow_core/detections_consensus@v1"]["scope"] == "run"


async def test_filter_by_class_confidence_and_size_with_and_or(image: WImage) -> None:
    found = detections(image, box("a", 10, 10, 10, 10, 0.9), box("a", 50, 50, 2, 2, 0.9), box("b", 80, 80, 10, 10, 0.4))
    big = {"type": "BinaryStatement", "left_operand": {"type": "DynamicOperand", "operations": [
        {"type": "ExtractDetectionProperty", "property_name": "size"}]},
        "comparator": {"type": "(Number) >="}, "right_operand": {"type": "StaticOperand", "value": 50}}
    unsure = {"type": "BinaryStatement", "left_operand": {"type": "DynamicOperand", "operations": [
        {"type": "ExtractDetectionProperty", "property_name": "confidence"}]},
        "comparator": {"type": "(Number) <"}, "right_operand": {"type": "DynamicOperand", "operand_name": "floor"}}
    block = DetectionsFilter()

    async def keep(statement: dict) -> list[tuple[str, float]]:
        config = block.check("f", {"operations": [{"type": "DetectionsFilter", "filter_operation": statement}]})
        (out,) = await block.run(ctx(), config, [{"predictions": found, "operations_parameters": {"floor": 0.5}}])
        return [(p["class"], p["x"]) for p in out["predictions"].predictions]

    assert await keep({"type": "StatementGroup", "operator": "and", "statements": [class_is("a"), big]}) == [("a", 10)]
    either = {"type": "StatementGroup", "operator": "or", "statements": [unsure, big]}
    assert await keep(either) == [("a", 10), ("b", 80)]
    assert await keep({**class_is("a"), "negate": True}) == [("b", 80)]


async def test_offset_grows_boxes_within_the_image(image: WImage) -> None:
    found = detections(image, box("a", 10, 50, 10, 10), box("b", 100, 50, 10, 10))
    (out,) = await DetectionOffset().run(ctx(), None, [{"predictions": found, "offset_width": 30, "offset_height": 4}])
    a, b = out["predictions"].predictions
    assert (a["x"] - a["width"] / 2, a["width"]) == (0, 30)  # clipped at the left edge
    assert (b["width"], b["height"], b["x"], b["y"]) == (40, 14, 100, 50)


async def test_consensus_keeps_what_enough_sources_agree_on(image: WImage) -> None:
    one = detections(image, box("a", 50, 50, 20, 20, 0.8), box("b", 150, 50, 20, 20, 0.9))
    two = detections(image, box("a", 52, 50, 20, 20, 0.6), box("a", 150, 50, 20, 20, 0.9))
    item = {"predictions_batches": [one, two], "required_votes": 2, "class_aware": True, "iou_threshold": 0.3,
            "confidence": 0.0, "classes_to_consider": None, "required_objects": None,
            "presence_confidence_aggregation": "max", "detections_merge_confidence_aggregation": "average",
            "detections_merge_coordinates_aggregation": "average"}
    (out,) = await DetectionsConsensus().run(ctx(), None, [item])
    (merged,) = out["predictions"].predictions  # b and a disagree on the class at x=150
    assert merged["class"] == "a" and merged["x"] == pytest.approx(51) and merged["confidence"] == pytest.approx(0.7)
    assert out["object_present"] is True and out["presence_confidence"] == pytest.approx(0.7)
    (none,) = await DetectionsConsensus().run(ctx(), None, [{**item, "required_objects": 2}])
    assert none["object_present"] is False


async def test_properties_and_drawing(image: WImage) -> None:
    found = detections(image, box("a", 10, 10, 10, 10), box("b", 50, 30, 40, 20))
    block = PropertyDefinition()
    for operations, expected in [([{"type": "SequenceLength"}], 2),
                                 ([{"type": "DetectionsPropertyExtract", "property_name": "class_name"}], ["a", "b"]),
                                 ([{"type": "DetectionsPropertyExtract", "property_name": "size"}], [100, 800])]:
        (out,) = await block.run(ctx(), block.check("p", {"operations": operations}), [{"data": found}])
        assert out["output"] == expected
    (drawn,) = await BoundingBoxVisualization().run(ctx(), None, [{"image": image, "predictions": found,
                                                                   "copy_image": True, "thickness": 2}])
    assert drawn["image"].pixels.shape == (100, 200, 3) and drawn["image"].pixels.sum() != image.pixels.sum()


async def test_operations_that_do_not_fit_their_value_are_the_callers_mistake(image: WImage) -> None:
    from services.workflows.definition import InvalidWorkflow  # noqa: PLC0415

    block = PropertyDefinition()
    config = block.check("p", {"operations": [{"type": "ClassificationPropertyExtract", "property_name": "top_class"}]})
    with pytest.raises(InvalidWorkflow, match="ClassificationPropertyExtract needs Classification, got Detections"):
        await block.run(ctx(), config, [{"data": detections(image, box("a", 1, 1, 1, 1))}])
    half = dict(box("a", 1, 1, 1, 1))
    del half["width"]  # a value that is not what the operations expect: the caller's mistake, not INTERNAL
    config = block.check("p", {"operations": [{"type": "DetectionsPropertyExtract", "property_name": "size"}]})
    with pytest.raises(InvalidWorkflow, match="operations do not apply to the value"):
        await block.run(ctx(), config, [{"data": detections(image, half)}])
