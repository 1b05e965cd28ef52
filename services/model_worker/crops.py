"""A detect -> crop -> classify plan run on one worker (``InferCrops``): the image is decoded once, the detector
runs on it, each detection's box is cut from the detector's own decoded pixels (``crop_boxes``: the same rule
as the workflow engine's dynamic crop) and the crops go to the classifier as one batch. Transport-free: the
servicer translates the typed plan (``fleet.internal.v1.CropPlan``) into ``CropPlan`` and the outcome back.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fleet.v1 import inference_pb2
from services.common.crop_boxes import Box, crop_box
from services.common.errors import FleetError, InvalidArgument
from services.common.model_record import ModelRecord
from services.common.layouts import TaskType
from services.model_worker.images import ImageInput, RawPixels
from services.model_worker.model_types import model_type
from services.model_worker.pipeline import InferenceOutput
from services.model_worker.processing.params import InferenceParams

if TYPE_CHECKING:
    from services.model_worker.worker import Worker

DETECTORS = (TaskType.OBJECT_DETECTION.value, TaskType.INSTANCE_SEGMENTATION.value,
             TaskType.KEYPOINT_DETECTION.value)
CLASSIFIERS = (TaskType.CLASSIFICATION.value,)


@dataclass(frozen=True)
class CropPlan:
    detector: ModelRecord
    image: ImageInput
    detector_params: InferenceParams
    classifier: ModelRecord
    classifier_params: InferenceParams
    max_crops: int  # more detections than this: no crop is classified
    background: bool = False  # both runs yield to interactive requests (a workflow's plan)


@dataclass
class CropsOutput:
    detections: InferenceOutput
    crops: list[InferenceOutput | FleetError] | None  # one per detection, in order; None: over max_crops


def boxes_of(out: InferenceOutput) -> list[Box]:
    """The crop boxes of a detector's answer, from its predictions as answered (the caller cuts by the same)."""
    task = model_type(out.record.spec).task
    response = inference_pb2.InferResponse()
    task.set_result(response, out.message)
    return [crop_box(p, out.width, out.height) for p in task.roboflow_json(response)["predictions"]]


def cut(pixels: np.ndarray, boxes: list[Box]) -> list[ImageInput]:
    """Each box of the (RGB) pixels as a raw image."""
    out = []
    for x0, y0, x1, y1 in boxes:
        crop = np.ascontiguousarray(pixels[y0:y1, x0:x1])
        out.append(ImageInput(raw=RawPixels(crop.tobytes(), x1 - x0, y1 - y0, 3)))
    return out


async def run_plan(worker: Worker, plan: CropPlan) -> CropsOutput:
    detector, classifier = model_type(plan.detector.spec).task, model_type(plan.classifier.spec).task
    if detector.name not in DETECTORS or classifier.name not in CLASSIFIERS or detector.custom_run:
        raise InvalidArgument(f"a crop plan runs a detector ({', '.join(DETECTORS)}) then a classifier; got "
                              f"{detector.name} then {classifier.name}")
    detected = await worker.infer(plan.detector, plan.image, plan.detector_params, keep_pixels=True,
                                  background=plan.background)
    pixels, detected.pixels = detected.pixels, None
    boxes = boxes_of(detected)
    if len(boxes) > plan.max_crops:
        return CropsOutput(detected, None)
    if not boxes or pixels is None:
        return CropsOutput(detected, [])
    await worker.pipeline.turn(plan.background)
    crops = await asyncio.get_running_loop().run_in_executor(worker.pipeline.pool(plan.background), cut, pixels,
                                                             boxes)
    del pixels
    return CropsOutput(detected, await worker.infer_many(plan.classifier, crops, plan.classifier_params,
                                                                plan.background))
