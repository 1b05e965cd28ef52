"""Workflow definitions the tests share (Roboflow's JSON, as users write it)."""

from __future__ import annotations

IMAGE = {"type": "WorkflowImage", "name": "image"}


def detect(confidence: float | str = 0.3, model: str = "shapes-det/1", name: str = "det") -> dict:
    return {"type": "roboflow_core/roboflow_object_detection_model@v1", "name": name, "images": "$inputs.image",
            "model_id": model, "confidence": confidence}


def one_step(model: str = "shapes-det/1") -> dict:
    return {"version": "1.0", "inputs": [IMAGE], "steps": [detect(model=model)],
            "outputs": [{"type": "JsonField", "name": "predictions", "selector": "$steps.det.predictions"}]}


def detect_crop_classify() -> dict:
    return {
        "version": "1.0",
        "inputs": [IMAGE, {"type": "WorkflowParameter", "name": "confidence", "default_value": 0.3}],
        "steps": [
            detect("$inputs.confidence"),
            {"type": "roboflow_core/dynamic_crop@v1", "name": "crop", "images": "$inputs.image",
             "predictions": "$steps.det.predictions"},
            {"type": "ClassificationModel", "name": "cls", "images": "$steps.crop.crops", "model_id": "shapes-cls/1"},
            {"type": "roboflow_core/property_definition@v1", "name": "top", "data": "$steps.cls.predictions",
             "operations": [{"type": "ClassificationPropertyExtract", "property_name": "top_class"}]},
        ],
        "outputs": [
            {"type": "JsonField", "name": "detections", "selector": "$steps.det.predictions"},
            {"type": "JsonField", "name": "classes", "selector": "$steps.cls.predictions"},
            {"type": "JsonField", "name": "top", "selector": "$steps.top.output"},
        ],
    }


def class_is(name: str) -> dict:
    return {"type": "BinaryStatement",
            "left_operand": {"type": "DynamicOperand", "operations": [
                {"type": "ExtractDetectionProperty", "property_name": "class_name"}]},
            "comparator": {"type": "=="}, "right_operand": {"type": "StaticOperand", "value": name}}


def count_at_least(operand: str, n: int) -> dict:
    return {"type": "StatementGroup", "operator": "and", "statements": [{
        "type": "BinaryStatement",
        "left_operand": {"type": "DynamicOperand", "operand_name": operand, "operations": [{"type": "SequenceLength"}]},
        "comparator": {"type": "(Number) >="}, "right_operand": {"type": "StaticOperand", "value": n}}]}
