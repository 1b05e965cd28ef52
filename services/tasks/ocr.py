"""OCR (PP-OCR): text lines with their quadrilaterals and confidences, and the page's text.

A model has a text detector (its first graph: DB probability maps), an optional angle classifier and a
recogniser (further graphs ``cls`` and ``rec``; CTC with the character dictionary its ONNX metadata carries,
key ``character``). The worker's pipeline is ``services.model_worker.processing.ocr``; the image is decoded
once, at its full size, within the decode budget.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.layouts import Layout
from services.tasks.base import COMMON_OUTPUTS, Json, Task, TensorSpec, text_table

if TYPE_CHECKING:
    import numpy as np

    from fastapi import APIRouter

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.http.context import HttpContext
    from services.gateway.oip.tensors import Tensor

NAME = "ocr"


class _Reader:
    """A held OCR model's graphs and dictionary (kept in ``HeldModel.extras``)."""

    def __init__(self, model: Any) -> None:
        from services.common.errors import ModelLoadError  # noqa: PLC0415
        from services.model_worker.processing.ocr import load_dictionary  # noqa: PLC0415

        opts = {"rec_graph": "rec", "cls_graph": "cls", "dictionary_key": "character", "text_score": 0.5,
                **model.record.spec.options}
        self.rec = model.graphs.get(opts["rec_graph"])
        self.cls = model.graphs.get(opts["cls_graph"])
        if self.rec is None:
            raise ModelLoadError(f"an OCR model needs graphs.{opts['rec_graph']} (the recogniser)")
        dictionary = self.rec.session.get_modelmeta().custom_metadata_map.get(opts["dictionary_key"])
        if not dictionary:
            raise ModelLoadError(f"the recogniser carries no character dictionary (metadata {opts['dictionary_key']!r})")
        self.classes = load_dictionary(dictionary)
        self.session = model.session
        self.text_score = float(opts["text_score"])

    @classmethod
    def of(cls, model: Any) -> _Reader:
        return model.extra("ocr", cls)

    def read(self, rgb: np.ndarray) -> Any:
        """Blocking (the CPU pool): detect, un-rotate, recognise."""
        from services.model_worker.processing.ocr import read_text  # noqa: PLC0415

        det = self.session.session
        det_name = det.get_inputs()[0].name

        def detect(x: np.ndarray) -> np.ndarray:
            return det.run(None, {det_name: x})[0]

        def graph(g: Any) -> Any:
            return lambda x: g.run({g.input_names[0]: x})[0]

        return read_text(rgb, detect, graph(self.rec), self.classes, graph(self.cls) if self.cls else None,
                         text_score=self.text_score)


class Ocr(Task):
    name = NAME
    proto = model_pb2.TASK_TYPE_OCR
    result_field = "ocr"
    roboflow_task = "ocr"
    oip_outputs = (TensorSpec("text", "BYTES", (-1,)), TensorSpec("lines", "BYTES", (-1,)),
                   TensorSpec("quads", "FP32", (-1, 4, 2)), TensorSpec("confidences", "FP32", (-1,)),
                   TensorSpec("batch_index", "INT32", (-1,)), *COMMON_OUTPUTS)
    summary = "text lines read from the image"
    needs_classes = False
    custom_run = True
    layouts = (Layout("pp-ocr", NAME, 1, "[1, H, W]: the text detector's probability map (recogniser and angle "
                      "classifier are further graphs)", lambda p: [(1, None, None)],
                      decoder="services.model_worker.processing.ocr:probability_map"),)

    async def run(self, runtime: Any, record: Any, inputs: Any, params: Any) -> Any:
        from services.common.errors import InvalidImage  # noqa: PLC0415
        from services.model_worker.pipeline import InferenceOutput, Timings  # noqa: PLC0415

        started = time.perf_counter()
        if inputs.image is None:
            raise InvalidImage("the request carries no image: set image.encoded, image.url or image.raw")
        pixels, decode_s = await runtime.pipeline.decoded(inputs.image, runtime.background)
        async with runtime.held(record) as (model, cold):
            reader = _Reader.of(model)
            t0 = time.perf_counter()
            page = await runtime.cpu(reader.read, pixels)
            infer_s = time.perf_counter() - t0
        message = inference_pb2.OcrResult(text=page.text, lines=[
            inference_pb2.TextLine(text=line.text, confidence=line.confidence,
                                   polygon=[inference_pb2.Point(x=float(x), y=float(y)) for x, y in line.quad.tolist()])
            for line in page.lines])
        visual = b""
        if params.visualize:
            from services.model_worker.visualize import render  # noqa: PLC0415

            visual = await runtime.cpu(render, pixels, lambda img: self.draw(img, page, record.spec))
        timings = Timings(decode_s=decode_s, inference_s=infer_s, total_s=time.perf_counter() - started,
                          batch_size=1, cold_start=cold)
        height, width = pixels.shape[:2]
        return InferenceOutput(uuid.uuid4().hex, record, width, height, message, message, visual, timings)

    def draw(self, img: np.ndarray, result: Any, spec: ModelSpec) -> None:
        """Each line's quadrilateral and its text (characters OpenCV cannot draw show as '?')."""
        import cv2  # noqa: PLC0415
        import numpy as np  # noqa: PLC0415

        from services.model_worker.visualize import colour, label  # noqa: PLC0415

        for i, line in enumerate(result.lines):
            bgr = colour(i)
            quad = np.asarray(line.quad, np.float32).round().astype(np.int32)
            cv2.polylines(img, [quad], True, bgr, 2, cv2.LINE_AA)
            text = "".join(c if 32 <= ord(c) < 127 else "?" for c in line.text)
            label(img, f"{text} {line.confidence:.2f}", int(quad[:, 0].min()), int(quad[:, 1].min()) - 2, bgr)

    def summarize(self, result: Any, spec: ModelSpec) -> Json:
        return {"lines": len(result.lines), "characters": len(result.text)}

    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        """Roboflow's OCR answer: ``result`` (the page's text) and the lines as predictions."""
        result = response.ocr
        predictions = []
        for line in result.lines:
            xs, ys = [p.x for p in line.polygon], [p.y for p in line.polygon]
            predictions.append({
                "x": (min(xs) + max(xs)) / 2, "y": (min(ys) + max(ys)) / 2, "width": max(xs) - min(xs),
                "height": max(ys) - min(ys), "confidence": line.confidence, "class": line.text, "class_id": 0,
                "detection_id": str(uuid.uuid4()), "points": [{"x": p.x, "y": p.y} for p in line.polygon]})
        return {"result": result.text, "predictions": predictions}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: ModelDescriptor) -> list[Tensor]:
        import numpy as np  # noqa: PLC0415

        from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

        rows = [(b, line) for b, r in enumerate(responses) for line in r.ocr.lines]
        n = len(rows)
        quads = np.array([[(p.x, p.y) for p in line.polygon] for _, line in rows], np.float32).reshape(n, 4, 2)
        return [
            Tensor("text", "BYTES", [len(responses)], [r.ocr.text.encode() for r in responses], text=True),
            Tensor("lines", "BYTES", [n], [line.text.encode() for _, line in rows], text=True),
            Tensor("quads", "FP32", [n, 4, 2], quads),
            Tensor("confidences", "FP32", [n], np.array([line.confidence for _, line in rows], np.float32)),
            Tensor("batch_index", "INT32", [n], np.array([b for b, _ in rows], np.int32)),
        ]

    def http_routes(self, ctx: HttpContext) -> APIRouter:
        """The Roboflow server's ``/ocr/pp-ocr``."""
        from services.tasks.http.ocr import router  # noqa: PLC0415 - the gateway's (FastAPI)

        return router(ctx)

    def table(self, response: inference_pb2.InferResponse) -> str:
        result = response.ocr
        rows = [[line.text, f"{line.confidence:.3f}",
                 " ".join(f"({p.x:.0f},{p.y:.0f})" for p in line.polygon)] for line in result.lines]
        return f"{len(rows)} lines\n" + text_table(["text", "confidence", "corners"], rows) + f"\n\n{result.text}"
