"""Classification: the classes best first (all, or the best top_k), multi-label picks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fleet.v1 import inference_pb2, model_pb2
from services.common.layouts import Layout, TaskType
from services.tasks.base import COMMON_OUTPUTS, CliParameter, Json, Task, TensorSpec, text_table

if TYPE_CHECKING:
    import numpy as np

    from fleet.internal.v1.descriptor_pb2 import ModelDescriptor
    from services.common.model_spec import ModelSpec
    from services.gateway.oip.tensors import Tensor
    from services.model_worker.processing.results import Classification as ClassificationResult


class Classification(Task):
    name = TaskType.CLASSIFICATION.value
    proto = model_pb2.TASK_TYPE_CLASSIFICATION
    result_field = "classification"
    roboflow_task = "classification"
    route = "classification"
    oip_outputs = (TensorSpec("probabilities", "FP32", (-1, -1)), TensorSpec("top", "BYTES", (-1,)),
                   TensorSpec("top_class_id", "INT32", (-1,)), TensorSpec("top_confidence", "FP32", (-1,)),
                   *COMMON_OUTPUTS)
    summary = "classes of the whole image"
    cli_parameters = (CliParameter("--top-k", "top_k", "classification: only the best k classes", type=int),)
    layouts = (Layout("yolov8-cls", name, 1, "[nc]: class probabilities", lambda p: [(p.num_classes,)],
                      decoder="services.model_worker.processing.decoders:classify"),)

    def present(self, result: ClassificationResult, spec: ModelSpec, params: Any, height: int,
                width: int) -> inference_pb2.ClassificationResult:
        names = spec.class_names
        preds = [inference_pb2.ClassPrediction(class_name=names[c], class_id=c, confidence=s)
                 for c, s in zip(result.class_ids.tolist(), result.scores.tolist())]
        top = result.top_class_id
        return inference_pb2.ClassificationResult(
            top_class=names[top] if top is not None else "", top_class_id=top or 0,
            top_confidence=result.top_score, predictions=preds, multi_label=result.multi_label,
            predicted_classes=[inference_pb2.ClassPrediction(class_name=names[c], class_id=c,
                                                             confidence=float(result.probability(c)))
                               for c in result.predicted_class_ids.tolist()],
        )

    def draw(self, img: np.ndarray, result: ClassificationResult, spec: ModelSpec) -> None:
        from services.model_worker.visualize import colour, label  # noqa: PLC0415

        for rank, (cid, score) in enumerate(zip(result.class_ids[:3], result.scores[:3])):
            label(img, f"{spec.class_names[cid]} {score:.2f}", 4, 22 + rank * 22, colour(int(cid)))

    def summarize(self, result: ClassificationResult, spec: ModelSpec) -> Json:
        top = result.top_class_id
        return {"top": spec.class_names[top] if top is not None else None, "confidence": round(result.top_score, 4)}

    def roboflow_json(self, response: inference_pb2.InferResponse) -> Json:
        c = response.classification
        if c.multi_label:
            return {"predictions": {p.class_name: {"confidence": p.confidence, "class_id": p.class_id}
                                    for p in c.predictions},
                    "predicted_classes": [p.class_name for p in c.predicted_classes]}
        return {"predictions": [{"class": p.class_name, "class_id": p.class_id, "confidence": p.confidence}
                                for p in c.predictions],
                "top": c.top_class, "confidence": c.top_confidence}

    def oip_tensors(self, responses: Sequence[inference_pb2.InferResponse], model: ModelDescriptor) -> list[Tensor]:
        import numpy as np  # noqa: PLC0415

        from services.gateway.oip.tensors import Tensor  # noqa: PLC0415

        b, num_classes = len(responses), len(model.class_names)
        probabilities = np.zeros((b, num_classes), np.float32)
        for row, response in enumerate(responses):
            for p in response.classification.predictions:
                if p.class_id < num_classes:
                    probabilities[row, p.class_id] = p.confidence
        results = [r.classification for r in responses]
        return [
            Tensor("probabilities", "FP32", [b, num_classes], probabilities),
            Tensor("top", "BYTES", [b], [c.top_class.encode() for c in results], text=True),
            Tensor("top_class_id", "INT32", [b], np.array([c.top_class_id for c in results], np.int32)),
            Tensor("top_confidence", "FP32", [b], np.array([c.top_confidence for c in results], np.float32)),
        ]

    def table(self, response: inference_pb2.InferResponse) -> str:
        c = response.classification
        rows = [[p.class_name, f"{p.confidence:.3f}"] for p in c.predictions]
        return f"top: {c.top_class} ({c.top_confidence:.3f})\n" + text_table(["class", "confidence"], rows)
