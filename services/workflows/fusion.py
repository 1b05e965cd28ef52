"""Detect -> crop -> classify as one model call: a detector step on an input image, a dynamic crop of that image
by its predictions and a classifier step on the crops, where nothing else reads the crops, run as one plan on a
worker that holds both models (``ModelRunner.infer_crops``). The image travels once and is decoded once (by the
worker, not also here), and the crops never leave the worker.

The three steps still run as steps (their outputs, spans, metrics and errors are theirs): the detector step
makes the call and keeps each image's crop answers for the other two; the crop step only works out where each
crop sits (``crop_boxes``, the rule the worker cut by); the classifier step answers from what was kept. An image
the call could not serve (no worker holds both models, or those that do failed) goes through the steps one by
one, as any other workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.common.crop_boxes import crop_box
from services.common.errors import FleetError, Internal
from services.tasks import registry as tasks
from services.workflows.blocks.base import CropsAnswer, Item, RunContext
from services.workflows.blocks.crop import DynamicCrop, check_count
from services.workflows.blocks.models import ClassificationModel, ModelBlock
from services.workflows.data import WImage
from services.workflows.metrics import FUSED

if TYPE_CHECKING:
    from services.workflows.compiler import Compiled, CompiledStep

BlockRun = Callable[[RunContext, Any, list[Item]], Awaitable[list[Item]]]


@dataclass(frozen=True)
class Fusion:
    head: CompiledStep  # the detector
    crop: CompiledStep
    tail: CompiledStep  # the classifier on the crops


def find(compiled: Compiled) -> list[Fusion]:
    """The detect -> crop -> classify chains of a compiled workflow that can run as one call."""
    from services.workflows.compiler import Ref, refs_of  # noqa: PLC0415 - the compiler imports this module's users

    readers: dict[str, list[str]] = {}
    for step in compiled.steps:
        for ref in refs_of(step.args):
            readers.setdefault(ref.source, []).append(step.name)
    by_name = {s.name: s for s in compiled.steps}
    answered = {ref.source for _, ref, _ in compiled.outputs}
    found = []
    for crop in compiled.steps:
        if not isinstance(crop.block, DynamicCrop) or crop.gate or crop.name in answered:
            continue
        image, predictions = crop.args["images"], crop.args["predictions"]
        if not (isinstance(image, Ref) and image.output is None and image.dim == 1 and isinstance(predictions, Ref)
                and predictions.output == "predictions"):
            continue
        head = by_name[predictions.source]
        if (not isinstance(head.block, ModelBlock) or isinstance(head.block, ClassificationModel) or head.gate
                or head.args["images"] != image):
            continue
        tails = readers.get(crop.name, [])
        if len(tails) != 1:
            continue
        tail, crops = by_name[tails[0]], by_name[tails[0]].args.get("images")
        if (not isinstance(tail.block, ClassificationModel) or tail.gate
                or not (isinstance(crops, Ref) and crops.source == crop.name and crops.output == "crops")
                or any(isinstance(r, Ref) and r.dim > 0 for k, r in tail.args.items() if k != "images")):
            continue
        found.append(Fusion(head, crop, tail))
    return found


class FusedSteps:
    """One run's fused chains: what each detector step's calls answered for its crop and classifier steps."""

    def __init__(self, fusions: list[Fusion], constants: Callable[[CompiledStep], Item]) -> None:
        self._constants = constants  # a step's values that are the same for every element (parameters)
        self._roles: dict[str, tuple[str, Fusion]] = {}
        for f in fusions:
            self._roles.update({f.head.name: ("head", f), f.crop.name: ("crop", f), f.tail.name: ("tail", f)})
        self._crops: dict[str, tuple[CropsAnswer, int, int]] = {}  # root image id -> its answer and size
        self._answers: dict[int, Any] = {}  # id(crop image) -> the classifier's response, or the crops' error

    def runner(self, step: CompiledStep) -> BlockRun | None:
        role = self._roles.get(step.name)
        if role is None:
            return None
        kind, fusion = role
        return {"head": self._head, "crop": self._crop, "tail": self._tail}[kind](fusion)

    # ---- the three steps ---------------------------------------------------------------------------------
    def _head(self, f: Fusion) -> BlockRun:
        block: ModelBlock = f.head.block  # type: ignore[assignment]
        tail_block: ClassificationModel = f.tail.block  # type: ignore[assignment]

        async def run(ctx: RunContext, config: Any, items: list[Item]) -> list[Item | FleetError]:
            first = items[0]
            try:
                constants = self._constants(f.tail)
                classifier_params = tail_block.parameters(constants)
                classifier = await ctx.models.model(str(constants["model_id"]))
            except FleetError:  # the classifier step, run by itself, fails with its own name
                return await block.run(ctx, config, items)
            detector = await ctx.models.model(str(first["model_id"]))
            if tasks.of_model(detector).name != block.task or tasks.of_model(classifier).name != tail_block.task:
                return await block.run(ctx, config, items)  # the steps one by one say what is wrong
            params = block.parameters(first)

            async def one(item: Item) -> CropsAnswer | None:
                try:
                    return await ctx.models.infer_crops(detector, item["images"].message(), params, classifier,
                                                        classifier_params, ctx.max_crops_per_image)
                except FleetError as exc:  # this image's own fault (undecodable...): the step by itself says
                    if exc.code.name != "INVALID_ARGUMENT":  # so, for this element alone (its scope)
                        raise
                    return None

            answers = await asyncio.gather(*(one(item) for item in items))
            rest = [i for i, a in enumerate(answers) if a is None]
            FUSED.labels("fused").inc(len(items) - len(rest))
            FUSED.labels("fallback").inc(len(rest))
            out: list[Item] = [{}] * len(items)
            if rest:
                try:
                    again = await block.run(ctx, config, [items[i] for i in rest])
                except FleetError as exc:  # one image alone is an Infer, its error raised: the element's own
                    if exc.code.name != "INVALID_ARGUMENT" or len(rest) > 1 or len(items) == 1:
                        raise
                    again = [exc]
                for i, answer in zip(rest, again):
                    out[i] = answer
            for i, answer in enumerate(answers):
                if answer is None:
                    continue
                image: WImage = items[i]["images"]
                response = answer.detections
                if not image.width:
                    image.width, image.height = response.image_width, response.image_height
                self._crops[image.image_id] = (answer, response.image_width, response.image_height)
                out[i] = block.outputs_of(image, response)
            return out

        return run

    def _crop(self, f: Fusion) -> BlockRun:
        async def run(ctx: RunContext, config: Any, items: list[Item]) -> list[Item]:
            out: list[Item] = [{}] * len(items)
            rest = []
            for i, item in enumerate(items):
                image: WImage = item["images"]
                found = self._crops.pop(image.image_id, None)
                if found is None:
                    rest.append(i)
                    continue
                answer, width, height = found
                check_count(ctx, item["predictions"])
                if answer.crops is None:
                    raise Internal("the worker skipped the crops of an image within the crop limit")
                predictions = item["predictions"].predictions
                crops = [image.region(crop_box(p, width, height), p.get("detection_id") or "") for p in predictions]
                if isinstance(answer.crops, list) and len(answer.crops) != len(crops):
                    raise Internal(f"the worker classified {len(answer.crops)} crops of {len(crops)} detections")
                for n, crop in enumerate(crops):
                    self._answers[id(crop)] = answer.crops[n] if isinstance(answer.crops, list) else answer.crops
                out[i] = {"crops": crops}
            if rest:
                for i, answer in zip(rest, await f.crop.block.run(ctx, config, [items[i] for i in rest])):
                    out[i] = answer
            return out

        return run

    def _tail(self, f: Fusion) -> BlockRun:
        block: ClassificationModel = f.tail.block  # type: ignore[assignment]

        async def run(ctx: RunContext, config: Any, items: list[Item]) -> list[Item]:
            out: list[Item] = [{}] * len(items)
            rest = []
            for i, item in enumerate(items):
                image: WImage = item["images"]
                if id(image) not in self._answers:
                    rest.append(i)
                    continue
                response = self._answers.pop(id(image))
                if isinstance(response, Exception):
                    raise response
                out[i] = block.outputs_of(image, response)
            if rest:
                for i, answer in zip(rest, await block.run(ctx, config, [items[i] for i in rest])):
                    out[i] = answer
            return out

        return run
