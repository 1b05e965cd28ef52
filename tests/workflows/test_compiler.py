"""Validation: a definition outside the supported subset, or one that does not fit together, is refused with the
step, the field and what is supported; a valid one compiles once per content hash."""

from __future__ import annotations

import copy

import pytest

from services.workflows.compiler import Compiler
from services.workflows.definition import InvalidWorkflow, WorkflowTooLarge
from tests.workflows.definitions import IMAGE, count_at_least, detect, detect_crop_classify, one_step


def compiler() -> Compiler:
    return Compiler(max_steps=8, max_bytes=16_384)


def refused(definition: dict, *fragments: str) -> str:
    with pytest.raises(InvalidWorkflow) as info:
        compiler().compile(definition)
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message
    return info.value.message


def test_a_valid_definition_compiles_once_per_content_hash() -> None:
    c = compiler()
    first = c.compile(detect_crop_classify())
    assert [s.name for s in first.steps] == ["det", "crop", "cls", "top"]
    assert c.compile(copy.deepcopy(detect_crop_classify())) is first  # same content: the cached graph
    assert c.compile(one_step()) is not first
    cls = next(s for s in first.steps if s.name == "cls")
    assert (cls.dim, cls.lineage) == (2, ("crop",))  # the classifier runs per crop


def test_legacy_aliases_and_ignored_roboflow_fields_are_accepted() -> None:
    definition = one_step()
    definition["steps"][0] |= {"type": "ObjectDetectionModel", "disable_active_learning": True}
    definition["inputs"][0]["type"] = "InferenceImage"
    compiler().compile(definition)


def test_an_unknown_block_names_the_step_and_what_is_supported() -> None:
    definition = one_step()
    definition["steps"][0]["type"] = "roboflow_core/sam2@v1"
    refused(definition, "step 'det'", "roboflow_core/sam2@v1", "roboflow_core/dynamic_crop@v1")


def test_an_unknown_field_and_a_missing_field_are_named() -> None:
    definition = one_step()
    definition["steps"][0]["colour"] = "red"
    refused(definition, "step 'det'", "field 'colour'", "parameters: images, model_id")
    definition = one_step()
    del definition["steps"][0]["model_id"]
    refused(definition, "step 'det'", "field 'model_id' is required")


def test_selectors_must_name_existing_inputs_steps_and_outputs() -> None:
    definition = one_step()
    definition["steps"][0]["images"] = "$inputs.picture"
    refused(definition, "step 'det'", "$inputs.picture", "inputs: image")
    definition = one_step()
    definition["outputs"][0]["selector"] = "$steps.det.boxes"
    refused(definition, "output 'predictions'", "no output 'boxes'", "inference_id, predictions")
    definition = one_step()
    definition["outputs"][0]["selector"] = "$steps.nope.predictions"
    refused(definition, "output 'predictions'", "names no step")
    definition = one_step()
    definition["steps"][0]["images"] = "inputs.image"
    refused(definition, "step 'det'", "field 'images'", "takes a selector")


def test_wrong_kinds_between_steps_are_refused() -> None:
    definition = detect_crop_classify()
    definition["steps"][1]["predictions"] = "$steps.det.inference_id"  # a string where boxes are wanted
    refused(definition, "step 'crop'", "field 'predictions'", "inference_id", "object_detection_prediction")
    definition = detect_crop_classify()
    definition["steps"][2]["images"] = "$inputs.confidence"  # a parameter where an image is wanted
    refused(definition, "step 'cls'", "is a parameter")
    definition = one_step()
    definition["steps"][0]["confidence"] = "high"
    refused(definition, "step 'det'", "field 'confidence'", "float or int")


def test_cycles_are_refused() -> None:
    definition = {"version": "1.0", "inputs": [IMAGE], "steps": [
        {"type": "DynamicCrop", "name": "a", "images": "$inputs.image", "predictions": "$steps.b.predictions"},
        {**detect(), "name": "b", "images": "$steps.a.crops"},
    ], "outputs": [{"type": "JsonField", "name": "o", "selector": "$steps.b.predictions"}]}
    refused(definition, "cycle", "a, b")


def test_inputs_of_one_step_must_be_at_one_level() -> None:
    definition = detect_crop_classify()
    definition["steps"].append({"type": "roboflow_core/bounding_box_visualization@v1", "name": "viz",
                                "image": "$inputs.image", "predictions": "$steps.cls.predictions"})
    refused(definition, "step 'viz'")  # classification is not boxes
    definition = detect_crop_classify()
    definition["steps"].append({"type": "roboflow_core/bounding_box_visualization@v1", "name": "viz",
                                "image": "$steps.crop.crops", "predictions": "$steps.det.predictions"})
    refused(definition, "step 'viz'", "per input image", "crop of crop", "one level")


def test_format_mistakes_and_bounds() -> None:
    refused({**one_step(), "version": "2.0"}, "version '2.0'", "supported: 1.0")
    refused({**one_step(), "inputs": [{"type": "WorkflowVideoMetadata", "name": "v"}]},
            "input 'v'", "WorkflowImage")
    refused({**one_step(), "outputs": []}, "at least one output")
    definition = one_step()
    definition["outputs"][0]["coordinates_system"] = "world"
    refused(definition, "coordinates_system 'world'", "own, parent")
    definition = one_step()
    definition["steps"].append(detect(name="det"))
    refused(definition, "'det' is used twice")
    many = {**one_step(), "steps": [detect(name=f"d{i}") for i in range(9)]}
    with pytest.raises(WorkflowTooLarge, match="9 steps; at most 8"):
        compiler().compile(many)
    big = {**one_step(), "inputs": [IMAGE, {"type": "WorkflowParameter", "name": "p", "default_value": "x" * 20_000}]}
    with pytest.raises(WorkflowTooLarge, match="at most 16384"):
        compiler().compile(big)


def test_operations_and_conditions_are_checked_at_validation() -> None:
    definition = one_step()
    definition["steps"].append({"type": "DetectionsFilter", "name": "f", "predictions": "$steps.det.predictions",
                                "operations": [{"type": "DetectionsFilter", "filter_operation": {
                                    "type": "BinaryStatement", "comparator": {"type": "~="},
                                    "left_operand": {"type": "StaticOperand", "value": 1},
                                    "right_operand": {"type": "StaticOperand", "value": 1}}}]})
    refused(definition, "step 'f'", "comparator '~='", "(Number) >=")
    definition = one_step()
    definition["steps"].append({"type": "ContinueIf", "name": "gate", "condition_statement": {},
                                "next_steps": ["$steps.det"]})
    refused(definition, "step 'gate'", "condition_statement", "StatementGroup")
    definition["steps"][-1] |= {"condition_statement": count_at_least("d", 1), "next_steps": ["$steps.nowhere"],
                                "evaluation_parameters": {"d": "$steps.det.predictions"}}
    refused(definition, "next_steps", "'nowhere' names no step")


@pytest.mark.parametrize("statement", [
    {"type": "StatementGroup", "statements": "abc"},
    {"type": "StatementGroup", "statements": 7},
    {"type": "BinaryStatement", "comparator": ["=="], "left_operand": {"type": "StaticOperand", "value": 1},
     "right_operand": {"type": "StaticOperand", "value": 1}},
    {"type": "UnaryStatement", "operator": {"type": {"x": 1}}, "operand": {"type": "StaticOperand", "value": 1}},
    "not a statement",
])
def test_malformed_statements_are_invalid_arguments_not_internal_errors(statement: object) -> None:
    definition = one_step()
    definition["steps"].append({"type": "ContinueIf", "name": "gate", "condition_statement": statement,
                                "next_steps": ["$steps.det"]})
    refused(definition, "step 'gate'")
    definition = one_step()
    definition["steps"].append({"type": "DetectionsFilter", "name": "f", "predictions": "$steps.det.predictions",
                                "operations": [{"type": "DetectionsFilter", "filter_operation": statement}]})
    refused(definition, "step 'f'")
