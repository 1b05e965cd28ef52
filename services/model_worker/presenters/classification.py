"""Classification: the classes best first (all, or the best top_k), multi-label picks."""

from __future__ import annotations

from typing import Any

import numpy as np

from fleet.v1 import inference_pb2
from services.common.model_spec import ModelSpec
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.results import Classification
from services.model_worker.visualize import colour, label


class ClassificationPresenter:
    field = "classification"

    def message(self, result: Classification, spec: ModelSpec, params: ResolvedParams, height: int,
                width: int) -> inference_pb2.ClassificationResult:
        names = spec.class_names
        preds = [inference_pb2.ClassPrediction(class_name=names[c], class_id=c, confidence=s)
                 for c, s in zip(result.class_ids.tolist(), result.scores.tolist())]
        predicted = result.predicted_class_ids.tolist()
        top = result.top_class_id
        return inference_pb2.ClassificationResult(
            top_class=names[top] if top is not None else "", top_class_id=top or 0,
            top_confidence=result.top_score, predictions=preds, multi_label=result.multi_label,
            predicted_classes=[inference_pb2.ClassPrediction(class_name=names[c], class_id=c,
                                                             confidence=float(result.probability(c)))
                               for c in predicted],
        )

    def draw(self, img: np.ndarray, result: Classification, spec: ModelSpec) -> None:
        for rank, (cid, score) in enumerate(zip(result.class_ids[:3], result.scores[:3])):
            label(img, f"{spec.class_names[cid]} {score:.2f}", 4, 22 + rank * 22, colour(int(cid)))

    def summarize(self, result: Classification, spec: ModelSpec) -> dict[str, Any]:
        top = result.top_class_id
        return {"top": spec.class_names[top] if top is not None else None, "confidence": round(result.top_score, 4)}
