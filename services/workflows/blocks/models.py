"""Model blocks: detection, instance segmentation, classification (single, multi-label), keypoints.

A step's elements (every image, or every crop, of the run) go to the fleet as one batched call per 64
images, through the same routing, batching, copies and failover as ``Infer``. An image or crop the worker
refuses alone (it cannot be decoded, is too small or too large) fails only its branch (``ELEMENT`` scope).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any, ClassVar

from fleet.v1 import inference_pb2
from services.common.errors import FleetError, InvalidArgument
from services.tasks import registry as tasks
from services.workflows import kinds
from services.workflows.blocks.base import ELEMENT, Block, Item, Param, RunContext
from services.workflows.data import Classification, Detections, WImage

BATCH = 64  # the most images one worker call carries

IMAGES = Param("The image(s) to run the model on.", kinds=(kinds.IMAGE,), required=True)
MODEL_ID = Param("Model id ('shapes-det/1') or alias.", literal=(str,), required=True)
CONFIDENCE = Param("Minimum score, 0..1 (unset: the model's).", literal=(float, int))
BOX_PARAMS = {
    "images": IMAGES, "model_id": MODEL_ID, "confidence": CONFIDENCE,
    "iou_threshold": Param("NMS IoU threshold, 0..1.", literal=(float, int)),
    "class_filter": Param("Only these class names.", literal=(list,)),
    "class_agnostic_nms": Param("NMS across classes.", literal=(bool,)),
    "max_detections": Param("At most this many predictions per image.", literal=(int,)),
    "max_candidates": Param("Candidates kept before NMS.", literal=(int,)),
}
IGNORED = ("disable_active_learning", "active_learning_target_dataset")  # Roboflow fields with no use here


async def infer_each(ctx: RunContext, model, images: list[WImage],  # noqa: ANN001 - a ModelDescriptor
                     params: inference_pb2.InferenceParameters) -> list[inference_pb2.InferResponse | FleetError]:
    """Each image's response or its own error, in batched calls of at most ``BATCH`` images, split evenly (so no
    call of several carries a lone image, whose error would be the call's); a root image whose header did not
    say its size takes the worker's."""
    parts = math.ceil(len(images) / BATCH)
    size = math.ceil(len(images) / parts)
    chunks = [images[i:i + size] for i in range(0, len(images), size)]
    calls = [ctx.models.infer_each(model, [im.message() for im in chunk], params) for chunk in chunks]
    answers = [await calls[0]] if len(calls) == 1 else await asyncio.gather(*calls)  # one: no task of its own
    responses = [r for chunk in answers for r in chunk]
    for image, response in zip(images, responses):
        if not image.width and not isinstance(response, FleetError):
            image.width, image.height = response.image_width, response.image_height
    return responses


class ModelBlock(Block):
    task: ClassVar[str]
    prediction_kind: ClassVar[str]
    ignored = IGNORED
    failure_scope = ELEMENT
    image_free = True  # the images go to workers as they came

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item | FleetError]:
        first = items[0]
        model = await ctx.models.model(str(first["model_id"]))
        actual = tasks.of_model(model).name
        if actual != self.task:
            raise InvalidArgument(f"model {model.model_id!r} is a {actual} model; this block runs {self.task} models")
        params = self.parameters(first)
        images = [item["images"] for item in items]
        responses = await infer_each(ctx, model, images, params)
        return [r if isinstance(r, FleetError) else self.outputs_of(image, r) for image, r in zip(images, responses)]

    def body(self, response) -> dict[str, Any]:  # noqa: ANN001
        """The answer's Roboflow JSON (its task's own)."""
        return tasks.of_response(response).roboflow_json(response)

    def parameters(self, item: Item):  # noqa: ANN201 - fleet.v1.InferenceParameters
        """The inference parameters an element's values set (every element of a step has the same)."""
        from services.gateway.params import inference_parameters  # noqa: PLC0415 - the edges' parameter parsing

        return inference_parameters(**{k: item.get(k) for k in self.params if k not in ("images", "model_id")})

    def outputs_of(self, image, response) -> Item:  # noqa: ANN001
        return {"inference_id": response.inference_id, "predictions": Detections(
            image, self.body(response)["predictions"], self.prediction_kind, response.inference_id)}


class BoxModelBlock(ModelBlock):
    """A model answering boxes (with outlines, with keypoints): the box parameters, ``predictions`` of its kind."""

    params = BOX_PARAMS

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.outputs = {"inference_id": kinds.INFERENCE_ID, "predictions": cls.prediction_kind}


class ObjectDetectionModel(BoxModelBlock):
    id = "roboflow_core/roboflow_object_detection_model@v1"
    aliases = ("RoboflowObjectDetectionModel", "ObjectDetectionModel")
    summary = "Boxes with classes from an object-detection model."
    task = "object-detection"
    prediction_kind = kinds.OBJECT_DETECTION


class InstanceSegmentationModel(BoxModelBlock):
    id = "roboflow_core/roboflow_instance_segmentation_model@v1"
    aliases = ("RoboflowInstanceSegmentationModel", "InstanceSegmentationModel")
    summary = "Boxes with outlines (points) from an instance-segmentation model."
    task = "instance-segmentation"
    prediction_kind = kinds.INSTANCE_SEGMENTATION


class KeypointDetectionModel(BoxModelBlock):
    id = "roboflow_core/roboflow_keypoint_detection_model@v1"
    aliases = ("RoboflowKeypointDetectionModel", "KeypointsDetectionModel")
    summary = "Boxes with named keypoints from a keypoint-detection model."
    task = "keypoint-detection"
    prediction_kind = kinds.KEYPOINT_DETECTION


class ClassificationModel(ModelBlock):
    id = "roboflow_core/roboflow_classification_model@v1"
    aliases = ("RoboflowClassificationModel", "ClassificationModel")
    summary = "The classes of each image (or crop) from a single-label classification model."
    task = "classification"
    params = {"images": IMAGES, "model_id": MODEL_ID, "confidence": CONFIDENCE}
    outputs = {"inference_id": kinds.INFERENCE_ID, "predictions": kinds.CLASSIFICATION}

    def outputs_of(self, image, response) -> Item:  # noqa: ANN001
        return {"inference_id": response.inference_id,
                "predictions": Classification(image, self.body(response), response.inference_id)}


class MultiLabelClassificationModel(ClassificationModel):
    id = "roboflow_core/roboflow_multi_label_classification_model@v1"
    aliases = ("RoboflowMultiLabelClassificationModel", "MultiLabelClassificationModel")
    summary = ("Every class over the confidence threshold, per image (or crop), from a classification model "
               "(answered as 'predictions' by class name and 'predicted_classes').")

    def body(self, response) -> dict[str, Any]:  # noqa: ANN001
        c = response.classification
        if c.multi_label:
            return super().body(response)
        # a single-label model: its top class is the one predicted
        return {"predictions": {p.class_name: {"confidence": p.confidence, "class_id": p.class_id}
                                for p in c.predictions},
                "predicted_classes": [c.top_class] if c.top_class else []}


MODEL_BLOCKS = (ObjectDetectionModel(), InstanceSegmentationModel(), KeypointDetectionModel(), ClassificationModel(),
                MultiLabelClassificationModel())
