"""Kinds: what a value flowing between steps is (Roboflow's kind names)."""

from __future__ import annotations

IMAGE = "image"
OBJECT_DETECTION = "object_detection_prediction"
INSTANCE_SEGMENTATION = "instance_segmentation_prediction"
KEYPOINT_DETECTION = "keypoint_detection_prediction"
CLASSIFICATION = "classification_prediction"
STRING = "string"
FLOAT = "float"
INTEGER = "integer"
BOOLEAN = "boolean"
LIST = "list_of_values"
INFERENCE_ID = "inference_id"
ANY = "*"

#: Kinds whose values are boxes with classes; a block that takes boxes takes any of them.
DETECTIONS = (OBJECT_DETECTION, INSTANCE_SEGMENTATION, KEYPOINT_DETECTION)
#: The kinds an input parameter may bring (checked when the run gives its value).
PARAMETER = ANY


def compatible(produced: str, accepted: tuple[str, ...]) -> bool:
    """Whether a value of kind ``produced`` may feed a parameter accepting ``accepted``."""
    if ANY in accepted or produced == ANY:
        return True
    if produced in accepted:
        return True
    return produced in (INTEGER,) and FLOAT in accepted
