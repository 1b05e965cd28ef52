"""Foundation-model blocks: CLIP comparison (an image against texts) and OCR (the text on an image).

Their models are the fleet's (an id or alias in ``model_id``; by default the demo catalog's aliases ``clip`` and
``pp-ocr``); Roboflow's ``version`` names are accepted and mean that default.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fleet.v1 import inference_pb2
from services.common.errors import FleetError, InvalidArgument
from services.tasks import registry as tasks
from services.workflows import kinds
from services.workflows.blocks.base import ELEMENT, Block, Item, Param, RunContext
from services.workflows.blocks.models import infer_each
from services.workflows.data import Detections, WImage

CLIP_MODEL, OCR_MODEL = "clip", "pp-ocr"
TEXT_INPUT = "text"  # the embedding task's texts input


async def _model(ctx: RunContext, model_id: str, task: str):  # noqa: ANN202 - a ModelDescriptor
    model = await ctx.models.model(model_id)
    actual = tasks.of_model(model).name
    if actual != task:
        raise InvalidArgument(f"model {model.model_id!r} is a {actual} model; this block runs {task} models")
    return model


class ClipComparison(Block):
    id = "roboflow_core/clip_comparison@v1"
    aliases = ("ClipComparison",)
    summary = "The cosine similarity of each image (or crop) with each text, in the texts' order."
    params = {
        "images": Param("The image(s) to compare.", kinds=(kinds.IMAGE,), required=True),
        "texts": Param("The texts to compare with (a list).", kinds=(kinds.LIST,), literal=(list,), required=True),
        "model_id": Param(f"The embedding model (id or alias; default {CLIP_MODEL!r}).", literal=(str,),
                          default=CLIP_MODEL),
        "version": Param("Roboflow's CLIP version name: accepted, means the default model.", literal=(str,)),
    }
    outputs = {"similarity": kinds.LIST, "parent_id": kinds.STRING, "root_parent_id": kinds.STRING,
               "prediction_type": kinds.STRING}
    failure_scope = ELEMENT
    image_free = True  # the image goes to a worker as it came

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item | FleetError]:
        model = await _model(ctx, str(items[0]["model_id"] or CLIP_MODEL), "embedding")

        async def each(item: Item) -> Item | FleetError:
            try:
                return await one(item)
            except InvalidArgument as exc:  # this item's own (the others' may succeed; all failing fails the run)
                return exc

        async def one(item: Item) -> Item:
            texts = item["texts"]
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
                raise InvalidArgument("texts must be a non-empty list of non-empty strings")
            image: WImage = item["images"]
            answer = await ctx.models.infer_request(model, inference_pb2.InferRequest(
                model_id=model.model_id, image=image.message(),
                inputs={TEXT_INPUT: inference_pb2.InputValue(texts=inference_pb2.Texts(values=texts))}))
            return {"similarity": [s.similarity for s in answer.embedding.similarities],
                    "parent_id": image.image_id, "root_parent_id": image.root_id,
                    "prediction_type": "embeddings-comparison"}

        return list(await asyncio.gather(*(each(item) for item in items)))


class OcrModel(Block):
    id = "roboflow_core/ocr_model@v1"
    aliases = ("OCRModel",)
    summary = ("The text read on each image (or crop): 'result' (the lines in reading order) and the lines as "
               "'predictions' (boxes with their outline; 'class' is the line's text).")
    params = {
        "images": Param("The image(s) to read.", kinds=(kinds.IMAGE,), required=True),
        "model_id": Param(f"The OCR model (id or alias; default {OCR_MODEL!r}).", literal=(str,), default=OCR_MODEL),
    }
    outputs = {"result": kinds.STRING, "predictions": kinds.OBJECT_DETECTION, "parent_id": kinds.STRING,
               "root_parent_id": kinds.STRING, "prediction_type": kinds.STRING}
    failure_scope = ELEMENT
    image_free = True  # the image goes to a worker as it came

    async def run(self, ctx: RunContext, config: Any, items: list[Item]) -> list[Item | FleetError]:
        model = await _model(ctx, str(items[0]["model_id"] or OCR_MODEL), "ocr")
        images: list[WImage] = [item["images"] for item in items]
        out: list[Item | FleetError] = []
        for image, response in zip(images, await infer_each(ctx, model, images, inference_pb2.InferenceParameters())):
            if isinstance(response, FleetError):
                out.append(response)
                continue
            body = tasks.of_response(response).roboflow_json(response)
            out.append({"result": body["result"], "parent_id": image.image_id, "root_parent_id": image.root_id,
                        "predictions": Detections(image, body["predictions"], kinds.OBJECT_DETECTION,
                                                  response.inference_id),
                        "prediction_type": "ocr"})
        return out


FOUNDATION_BLOCKS = (ClipComparison(), OcrModel())
