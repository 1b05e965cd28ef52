"""Promptable segmentation (SAM-style): masks for point and box prompts on an image.

A model has an image encoder (its first graph, batched like detectors) and a prompt decoder (a further graph,
SAM's ONNX convention: ``services.model_worker.processing.sam``; Meta's ``SamOnnxModel`` export as it is, see
``services.packaging.sam_export``). The image's embedding is kept in the
worker's cache by the image's content hash, so more prompts on the same image skip the encoder; the gateway
sends an image to the holder that most likely has it (affinity). One request is one prompt: its points
(positive and negative, input ``points``), at most one box (input ``boxes``) and optionally the previous
low-resolution mask logits (input ``mask``, a tensor [1, h, w]); the answer is the masks, best first.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.layouts import Layout
from services.tasks import boxes as box_helpers
from services.tasks.base import COMMON_OUTPUTS, CliInput, Json, Task, TensorSpec, text_table
from services.tasks.segmentation import MASK_FORMAT, add_instance

if TYPE_CHECKING:
    import numpy as np

    from fastapi import APIRouter

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.http.context import HttpContext
    from services.gateway.oip.tensors import Tensor

NAME = "promptable-segmentation"
POINTS, BOXES, MASK = "points", "boxes", "mask"


@dataclass(frozen=True)
class Encoded:
    """An image's embedding and how the image was fitted to the encoder (kept in the worker's cache)."""

    embedding: Any  # np.ndarray (C, h, w)
    transform: Any  # services.model_worker.processing.preprocess.Transform


@dataclass(frozen=True)
class Segmented:
    """One prompt's masks (bool [K, H, W], best first) and scores, with the prompt (for ``draw``)."""

    masks: Any
    scores: Any
    points: Any  # services.model_worker.inputs.Points | None
    box: Any  # (4,) x0, y0, x1, y1 | None


def _options(spec: ModelSpec) -> dict[str, Any]:
    return {"decoder_graph": "decoder", "mask_threshold": 0.0, **spec.options}


def _segment(model: Any, spec: ModelSpec, encoded: Encoded, inputs: Any) -> tuple[Any, Any]:
    """Blocking (the CPU pool): the decoder on the cached embedding -> (masks bool [K, H, W], scores [K])."""
    import numpy as np  # noqa: PLC0415

    from services.common.errors import InvalidArgument, ModelLoadError  # noqa: PLC0415
    from services.model_worker.processing import sam  # noqa: PLC0415

    opts = _options(spec)
    decoder = model.graphs.get(opts["decoder_graph"])
    if decoder is None:
        raise ModelLoadError(f"a promptable-segmentation model needs graphs.{opts['decoder_graph']}")
    t = encoded.transform
    points, prompt_boxes, previous = inputs.points(POINTS), inputs.boxes(BOXES), inputs.tensor(MASK)
    if points is None and prompt_boxes is None:
        raise InvalidArgument("a promptable-segmentation request needs a prompt: points (input 'points') or a box "
                              "(input 'boxes')")
    for name, xy in ((POINTS, points.xy if points is not None else None),
                     (BOXES, prompt_boxes.xyxy.reshape(-1, 2) if prompt_boxes is not None else None)):
        if xy is not None and ((xy < 0).any() or (xy[:, 0] > t.orig_width).any() or (xy[:, 1] > t.orig_height).any()):
            raise InvalidArgument(f"input {name!r}: a prompt lies outside the {t.orig_width}x{t.orig_height} image")
    if prompt_boxes is not None and len(prompt_boxes.xyxy) > 1:
        raise InvalidArgument("input 'boxes': one request takes one box (send one request per box)")
    coords, labels = sam.prompt_arrays(t, points.xy if points is not None else None,
                                       points.positive.astype(np.float32) if points is not None else None,
                                       prompt_boxes.xyxy[0] if prompt_boxes is not None else None)
    shapes = {i.name: i.shape for i in decoder.session.get_inputs()}
    mask_shape = [d if isinstance(d, int) else 1 for d in shapes.get("mask_input", [1, 1, 1, 1])]
    mask_input = np.zeros([1, *mask_shape[1:]], np.float32)
    if previous is not None:
        if previous.size != mask_input.size:
            raise InvalidArgument(f"input 'mask': the previous mask logits must be {mask_shape[1:]} values of FP32")
        mask_input = previous.astype(np.float32).reshape(mask_input.shape)
    has_mask = np.array([1.0 if previous is not None else 0.0], np.float32)
    # SAM's own ONNX decoder (SamOnnxModel) names the embedding "image_embeddings" and, given orig_im_size,
    # answers the masks already at the original size (its mask_postprocessing); others answer low-res logits.
    embedding_name = "image_embeddings" if "image_embeddings" in shapes else "image_embedding"
    feeds = {embedding_name: encoded.embedding[None], "point_coords": coords, "point_labels": labels,
             "mask_input": mask_input,
             "has_mask_input": has_mask.reshape(1, 1) if len(shapes.get("has_mask_input", ())) == 2 else has_mask,
             "orig_im_size": np.array([t.orig_height, t.orig_width], np.float32)}
    feeds = {k: v for k, v in feeds.items() if k in shapes}
    masks, scores = decoder.run(feeds)[:2]
    if "orig_im_size" in shapes:
        logits = masks[0]
    else:
        logits = sam.masks_to_original(masks[0], t, (spec.input.width, spec.input.height))
    order = np.argsort(-scores[0], kind="stable")
    return logits[order] > float(opts["mask_threshold"]), scores[0][order]


def _floats(values: list[str], flag: str, form: str) -> list[float]:
    try:
        return [float(v) for v in values]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{flag} expects {form}, got {','.join(values)!r}") from None


def point_arg(text: str) -> tuple[float, float, bool]:
    """``fleet infer --point``: ``X,Y`` (a positive point) or ``X,Y,neg`` (a negative one), original-image pixels."""
    parts = [p.strip() for p in text.split(",")]
    sign = parts[2].lower() if len(parts) == 3 else "pos"
    if len(parts) not in (2, 3) or sign not in ("pos", "positive", "neg", "negative"):
        raise argparse.ArgumentTypeError(f"--point expects X,Y or X,Y,neg, got {text!r}")
    x, y = _floats(parts[:2], "--point", "X,Y or X,Y,neg")
    return (x, y, sign.startswith("neg"))


def box_arg(text: str) -> tuple[float, float, float, float]:
    """``fleet infer --box``: ``X,Y,W,H``, centre x, centre y, width, height in original-image pixels."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"--box expects X,Y,W,H (centre, width, height), got {text!r}")
    x, y, w, h = _floats(parts, "--box", "X,Y,W,H")
    return (x, y, w, h)


def _points(values: list[tuple[float, float, bool]]) -> inference_pb2.InputValue:
    return inference_pb2.InputValue(points=inference_pb2.PointPrompts(points=[
        inference_pb2.PointPrompt(x=x, y=y, negative=negative) for x, y, negative in values]))


def _boxes(values: list[tuple[float, float, float, float]]) -> inference_pb2.InputValue:
    return inference_pb2.InputValue(boxes=inference_pb2.BoxPrompts(boxes=[
        inference_pb2.BoxPrompt(x=x, y=y, width=w, height=h) for x, y, w, h in values]))


class PromptableSegmentation(Task):
    name = NAME
    proto = model_pb2.TASK_TYPE_PROMPTABLE_SEGMENTATION
    result_field = "promptable_segmentation"
    roboflow_task = "promptable-segmentation"
    oip_outputs = (*box_helpers.DETECTION_OUTPUTS, TensorSpec("polygons", "BYTES", (-1,)), *COMMON_OUTPUTS)
    summary = "masks for point and box prompts"
    needs_classes = False
    custom_run = True
    image_affinity = True
    layouts = (Layout("sam", NAME, 1, "[C, h, w]: the image embedding (the prompt decoder is a further graph)",
                      lambda p: [(None, None, None)], decoder="services.model_worker.processing.sam:embedding"),)
    cli_parameters = (MASK_FORMAT,)
    cli_inputs = (
        CliInput("--point", POINTS, "promptable segmentation: a point prompt, ',neg' for background (repeatable; "
                 "input 'points')", _points, parse=point_arg, metavar="X,Y[,neg]"),
        CliInput("--box", BOXES, "promptable segmentation: a box prompt, centre x, y, width, height (input 'boxes')",
                 _boxes, parse=box_arg, metavar="X,Y,W,H"))

    # ---- the worker -------------------------------------------------------------------------------------
    async def run(self, runtime: Any, record: Any, inputs: Any, params: Any) -> Any:
        from services.common.errors import InvalidImage  # noqa: PLC0415
        from services.model_worker.embedding_cache import image_hash, nbytes  # noqa: PLC0415
        from services.model_worker.pipeline import InferenceOutput, Timings  # noqa: PLC0415

        started = time.perf_counter()
        if inputs.image is None:
            raise InvalidImage("the request carries no image: set image.encoded, image.url or image.raw")
        resolved = params.resolve(record.spec)
        image = await runtime.pipeline.fetched(inputs.image)
        digest = image_hash(image)
        timings = Timings()
        async with runtime.held(record) as (model, cold):
            async def encode() -> tuple[Encoded, int]:
                prepared, batch = await runtime.pipeline.encode(model, image, record.spec.input,
                                                                background=runtime.background)
                timings.decode_s, timings.preprocess_s = prepared.decode_s, prepared.preprocess_s
                timings.queue_s, timings.inference_s, timings.batch_size = batch.queue_s, batch.infer_s, batch.batch_size
                embedding = batch.outputs[0]
                return Encoded(embedding, prepared.transform), nbytes(embedding)

            encoded, cached = await runtime.embeddings.get((record.model_id, record.spec.sha256, digest), encode)
            t0 = time.perf_counter()
            masks, scores = await runtime.cpu(_segment, model, record.spec, encoded, inputs)
            decoder_s = time.perf_counter() - t0
        t = encoded.transform
        t1 = time.perf_counter()
        message = await runtime.cpu(self._message, masks, scores, resolved.mask_format, t.orig_height, t.orig_width)
        message.embedding_cached, message.image_hash = cached, digest
        visual = b""
        if params.visualize:
            from services.model_worker.visualize import render  # noqa: PLC0415

            pixels, _ = await runtime.pipeline.decoded(inputs.image, runtime.background)
            prompt_boxes = inputs.boxes(BOXES)
            drawn = Segmented(masks, scores, inputs.points(POINTS), prompt_boxes.xyxy[0] if prompt_boxes else None)
            visual = await runtime.cpu(render, pixels, lambda img: self.draw(img, drawn, record.spec))
        timings.inference_s += decoder_s
        timings.postprocess_s = time.perf_counter() - t1
        timings.cold_start = cold
        timings.total_s = time.perf_counter() - started
        return InferenceOutput(uuid.uuid4().hex, record, t.orig_width, t.orig_height, message, message, visual, timings)

    def draw(self, img: np.ndarray, result: Segmented, spec: ModelSpec) -> None:
        """The best mask filled and outlined, its score, and the prompt: positive points green, negative red, the
        box in white."""
        import cv2  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415

        from services.model_worker.visualize import colour, label  # noqa: PLC0415

        if len(result.masks):
            mask, bgr = result.masks[0], colour(3)
            overlay = img.copy()
            overlay[mask] = bgr
            cv2.addWeighted(overlay, 0.45, img, 0.55, 0, dst=img)
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(img, contours, -1, bgr, 2, cv2.LINE_AA)
            ys, xs = np.nonzero(mask)
            if len(xs):
                label(img, f"mask {float(result.scores[0]):.2f}", int(xs.min()), int(ys.min()), bgr)
        if result.box is not None:
            x0, y0, x1, y1 = (int(round(float(v))) for v in result.box)
            cv2.rectangle(img, (x0, y0), (x1, y1), (255, 255, 255), 2)
        if result.points is not None:
            for (x, y), positive in zip(result.points.xy.tolist(), result.points.positive.tolist()):
                centre = (int(round(x)), int(round(y)))
                cv2.circle(img, centre, 6, (255, 255, 255), -1)
                cv2.circle(img, centre, 4, (0, 200, 0) if positive else (0, 0, 230), -1)

    @staticmethod
    def _message(masks: np.ndarray, scores: np.ndarray, mask_format: Any, height: int,
                 width: int) -> inference_pb2.PromptableSegmentationResult:
        import numpy as np  # noqa: PLC0415

        from services.model_worker.processing.results import InstanceMask  # noqa: PLC0415

        out = inference_pb2.PromptableSegmentationResult()
        prompt = out.prompts.add()
        for mask, score in zip(masks, scores.tolist()):
            ys, xs = np.nonzero(mask)
            if not len(xs):
                continue
            x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
            detection = inference_pb2.Detection(x=(x0 + x1) / 2, y=(y0 + y1) / 2, width=x1 - x0, height=y1 - y0,
                                                confidence=score, class_name="object", detection_id=str(uuid.uuid4()))
            add_instance(prompt.masks, detection, InstanceMask(x0, y0, mask[y0:y1, x0:x1]), mask_format, height, width)
        return out

    def summarize(self, result: Any, spec: ModelSpec) -> Json:
        return {"masks": sum(len(p.masks) for p in result.prompts), "embedding_cached": result.embedding_cached}

    # ---- the edges --------------------------------------------------------------------------------------
    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        return {"predictions": [{**box_helpers.box_json(m.detection), "points": [{"x": p.x, "y": p.y} for p in m.points]}
                                for prompt in response.promptable_segmentation.prompts for m in prompt.masks]}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: ModelDescriptor) -> list[Tensor]:
        import json  # noqa: PLC0415

        from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

        tensors, rows = box_helpers.detection_tensors(responses, lambda r: [
            (m.detection, [(p.x, p.y) for p in m.points]) for prompt in r.promptable_segmentation.prompts
            for m in prompt.masks])
        outlines = [json.dumps([[round(x, 2), round(y, 2)] for x, y in pts]).encode() for _, pts in rows]
        return [*tensors, Tensor("polygons", "BYTES", [len(rows)], outlines, text=True)]

    def http_routes(self, ctx: HttpContext) -> APIRouter:
        """The Roboflow server's ``/sam2/segment_image`` and ``/sam2/embed_image``."""
        from services.tasks.http.promptable import router  # noqa: PLC0415 - the gateway's (FastAPI)

        return router(ctx)

    def table(self, response: inference_pb2.InferResponse) -> str:
        result = response.promptable_segmentation
        masks = [m for p in result.prompts for m in p.masks]
        rows = [row + [str(len(m.points)), "yes" if m.HasField("rle") else ""]
                for row, m in zip(box_helpers.box_rows(m.detection for m in masks), masks)]
        head = f"{len(rows)} masks (image embedding {'cached' if result.embedding_cached else 'computed'})\n"
        return head + text_table(box_helpers.HEADERS + ["outline points", "rle"], rows)
