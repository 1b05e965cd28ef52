"""Which detect -> crop -> classify chains run as one worker call: only where nothing but the classifier reads the
crops, no step of the chain is gated, and the detector runs on the image the crops are cut from (a fused chain's
image is then not decoded on the gateway)."""

from __future__ import annotations

import copy

from services.workflows.compiler import Compiler
from tests.workflows.definitions import IMAGE, count_at_least, detect, detect_crop_classify


def chains(definition: dict) -> list[tuple[str, str, str]]:
    compiled = Compiler(max_steps=16, max_bytes=65_536).compile(definition)
    return [(f.head.name, f.crop.name, f.tail.name) for f in compiled.fusions]


def with_steps(*steps: dict, outputs: tuple[str, ...] = ("$steps.cls.predictions",)) -> dict:
    return {"version": "1.0", "inputs": [IMAGE], "steps": list(steps),
            "outputs": [{"type": "JsonField", "name": f"out{i}", "selector": s} for i, s in enumerate(outputs)]}


CROP = {"type": "DynamicCrop", "name": "crop", "images": "$inputs.image", "predictions": "$steps.det.predictions"}
CLS = {"type": "ClassificationModel", "name": "cls", "images": "$steps.crop.crops", "model_id": "shapes-cls/1"}


def test_a_detect_crop_classify_chain_is_fused_and_its_image_not_decoded_here() -> None:
    compiled = Compiler(max_steps=16, max_bytes=65_536).compile(detect_crop_classify())
    assert [(f.head.name, f.crop.name, f.tail.name) for f in compiled.fusions] == [("det", "crop", "cls")]
    assert compiled.decoded_inputs(True) == set() and compiled.decoded_inputs(False) == {"image"}
    multi = {**CLS, "type": "roboflow_core/roboflow_multi_label_classification_model@v1"}
    assert chains(with_steps(detect(), CROP, multi)) == [("det", "crop", "cls")]


def test_chains_whose_crops_are_read_elsewhere_or_gated_run_step_by_step() -> None:
    base = with_steps(detect(), CROP, CLS)
    assert chains(base) == [("det", "crop", "cls")]
    answered = copy.deepcopy(base)
    answered["outputs"].append({"type": "JsonField", "name": "crops", "selector": "$steps.crop.crops"})
    assert chains(answered) == []  # the crops leave the worker: they are cut here
    second = {**CLS, "name": "cls2"}
    assert chains(with_steps(detect(), CROP, CLS, second)) == []  # two steps read the crops
    inner = {**detect(name="inner"), "images": "$steps.crop.crops"}
    assert chains(with_steps(detect(), CROP, CLS, inner)) == []
    gate = {"type": "ContinueIf", "name": "gate", "condition_statement": count_at_least("n", 1),
            "evaluation_parameters": {"n": "$steps.det.predictions"}, "next_steps": ["$steps.crop"]}
    assert chains(with_steps(detect(), gate, CROP, CLS)) == []  # the crop step runs only where the gate opens
    other_image = {**CROP, "images": "$inputs.other"}
    two_inputs = with_steps(detect(), other_image, CLS)
    two_inputs["inputs"].append({"type": "WorkflowImage", "name": "other"})
    assert chains(two_inputs) == []  # the detector ran on another image than the one cut
    on_crops = {**CLS, "name": "cls", "images": "$inputs.image"}
    assert chains(with_steps(detect(), CROP, on_crops, outputs=("$steps.cls.predictions",))) == []
