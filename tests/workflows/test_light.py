"""The light rule: which runs do no image work in the engine (a gateway runs those itself, docs/workflows.md
"Where the engine runs"). Over the block classes (a block doing image work must not be marked ``image_free``)
and over compiled definitions."""

from __future__ import annotations

import inspect

import pytest

from services.workflows import blocks, kinds
from services.workflows.blocks.crop import DynamicCrop
from services.workflows.blocks.visualize import VISUALIZATION_BLOCKS
from services.workflows.compiler import Compiler
from tests.workflows.definitions import IMAGE, class_is, detect, detect_crop_classify, one_step

IMAGE_WORK = ("ctx.cpu", ".array(", ".pixels", "cv2.", "encode_jpeg", "imencode", "imdecode")


def compiled(definition: dict):  # noqa: ANN201
    return Compiler(max_steps=16, max_bytes=65_536).compile(definition)


@pytest.mark.parametrize("block", blocks.ALL, ids=lambda b: b.id)
def test_a_block_marked_image_free_does_no_image_work(block) -> None:  # noqa: ANN001
    if not block.image_free:
        return
    assert not block.needs_pixels, f"{block.id} reads pixels"
    assert not block.adds_dimension, f"{block.id} makes crops"
    assert not any(kind in (kinds.IMAGE, kinds.ANY) for kind in block.outputs.values()), f"{block.id} answers images"
    source = "".join(inspect.getsource(k) for k in type(block).__mro__ if k.__module__.startswith("services."))
    found = [w for w in IMAGE_WORK if w in source]
    assert not found, f"{block.id} is marked image_free but its code does image work: {found}"


def test_blocks_doing_image_work_are_not_image_free_and_model_blocks_are() -> None:
    assert not DynamicCrop.image_free
    assert VISUALIZATION_BLOCKS and not any(b.image_free for b in VISUALIZATION_BLOCKS)
    assert blocks.find("roboflow_core/roboflow_object_detection_model@v1").image_free
    assert blocks.find("ClassificationModel").image_free
    assert blocks.find("roboflow_core/detections_filter@v1").image_free
    assert not blocks.find("roboflow_core/property_definition@v1").image_free  # not declared: not light


def test_a_one_step_detector_and_pure_json_blocks_after_it_are_light() -> None:
    assert compiled(one_step()).light
    definition = one_step()
    definition["steps"].append({"type": "roboflow_core/detections_filter@v1", "name": "only",
                                "predictions": "$steps.det.predictions", "operations": [
                                    {"type": "DetectionsFilter", "filter_operation": class_is("circle")}]})
    definition["outputs"].append({"type": "JsonField", "name": "circles", "selector": "$steps.only.predictions"})
    assert compiled(definition).light
    two = {"version": "1.0", "inputs": [IMAGE], "steps": [detect(), detect(name="det2", model="shapes-det/2")],
           "outputs": [{"type": "JsonField", "name": "a", "selector": "$steps.det.predictions"},
                       {"type": "JsonField", "name": "b", "selector": "$steps.det2.predictions"}]}
    assert compiled(two).light


def test_crops_drawings_and_image_outputs_are_not_light() -> None:
    assert not compiled(detect_crop_classify()).light
    drawn = one_step()
    drawn["steps"].append({"type": "roboflow_core/bounding_box_visualization@v1", "name": "viz",
                           "image": "$inputs.image", "predictions": "$steps.det.predictions"})
    drawn["outputs"].append({"type": "JsonField", "name": "drawn", "selector": "$steps.viz.image"})
    assert not compiled(drawn).light
    drawn["outputs"].pop()  # drawn and not answered: still image work
    assert not compiled(drawn).light
    echoed = one_step()
    echoed["outputs"].append({"type": "JsonField", "name": "image", "selector": "$inputs.image"})
    assert not compiled(echoed).light
