"""Raw model outputs of one image -> a result, through the model type's decoder.

The layouts are declared by the tasks (``services.tasks``) and described in ``docs/model-package.md``;
each names its decoder (the built-in ones are in ``decoders``), found through ``model_types``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from services.common.model_spec import ModelSpec
from services.model_worker.model_types import check_output_shapes, model_type
from services.model_worker.processing.params import ResolvedParams
from services.model_worker.processing.preprocess import Transform

__all__ = ["check_output_shapes", "postprocess"]


def postprocess(outputs: Sequence[np.ndarray], spec: ModelSpec, transform: Transform, params: ResolvedParams) -> Any:
    """Decode one image's raw outputs (batch dimension removed) into a result."""
    check_output_shapes(spec, [o.shape for o in outputs])
    return model_type(spec).decode(outputs, spec, transform, params)
