"""The worker's model types: for each ``model_type`` (a layout its task declares), the decoder of its raw
outputs and the task that presents the result.

Layouts and tasks live in ``services.tasks``; a layout names its decoder as "module:function", imported
here on first use, so a plug-in task brings its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from services.common.errors import ModelLoadError
from services.common.layouts import LAYOUTS, Layout
from services.common.model_checks import check_output_shapes  # noqa: F401 - the worker's callers import it here
from services.common.model_spec import ModelSpec
from services.tasks import registry as tasks
from services.tasks.base import Task

Decode = Callable[[Sequence[np.ndarray], ModelSpec, Any, Any], Any]  # outputs, spec, Transform, ResolvedParams


@dataclass(frozen=True)
class ModelType:
    layout: Layout
    decode: Decode
    task: Task


@lru_cache(maxsize=None)
def _model_type(name: str) -> ModelType:
    layout = LAYOUTS[name]
    module, _, function = layout.decoder.partition(":")
    if not module or not function:
        raise ModelLoadError(f"model_type {name!r} names no decoder the worker can run")
    try:
        decode = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"the decoder of model_type {name!r} could not be imported: {exc}") from None
    return ModelType(layout, decode, tasks.get(layout.task))


def model_type(spec: ModelSpec) -> ModelType:
    return _model_type(spec.model_type)
