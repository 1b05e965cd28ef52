"""How each task's result is presented: its protobuf message, its drawing, its inference-log line.

One presenter per task; ``services.model_worker.model_types`` pairs each model type with its
decoder and presenter. Presenters run in the CPU pool, off the event loop.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from google.protobuf.message import Message

from services.common.model_spec import ModelSpec
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.results import Classification, Detections

Result = Detections | Classification


class Presenter(Protocol):
    #: The ``InferResponse.result`` field the message goes into.
    field: str

    def message(self, result: Any, spec: ModelSpec, params: ResolvedParams, height: int, width: int) -> Message: ...

    def draw(self, img: np.ndarray, result: Any, spec: ModelSpec) -> None: ...

    def summarize(self, result: Any, spec: ModelSpec) -> dict[str, Any]: ...
