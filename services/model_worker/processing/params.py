"""Task parameters of one inference request, validated and resolved against a model."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from services.common.errors import InvalidArgument
from services.common.messages import summarize
from services.common.model_spec import ModelSpec

MAX_DETECTIONS_LIMIT = 10_000
MAX_CANDIDATES_LIMIT = 100_000
DEFAULT_MAX_CANDIDATES = 30_000
MAX_CLASS_FILTER = 4096  # names in one request's class_filter
MAX_CLASS_NAME_CHARS = 256


class MaskFormat(str, enum.Enum):
    """How an instance mask is answered."""

    OUTLINE = "outline"  # the largest connected part's outline
    POLYGONS = "polygons"  # every part's outline and every hole's
    RLE = "rle"  # COCO run-length encoding of the full-image mask


@dataclass(frozen=True)
class InferenceParams:
    """What a caller may set; ``None`` means "the model's default"."""

    confidence: float | None = None
    iou_threshold: float | None = None
    class_agnostic_nms: bool | None = None
    max_detections: int | None = None
    max_candidates: int | None = None
    class_filter: tuple[str, ...] = ()
    visualize: bool = False
    top_k: int | None = None
    mask_format: MaskFormat = MaskFormat.OUTLINE

    def __post_init__(self) -> None:
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise InvalidArgument(f"confidence must be between 0 and 1, got {self.confidence}")
        if self.iou_threshold is not None and not 0.0 <= self.iou_threshold <= 1.0:
            raise InvalidArgument(f"iou_threshold must be between 0 and 1, got {self.iou_threshold}")
        if self.max_detections is not None and not 1 <= self.max_detections <= MAX_DETECTIONS_LIMIT:
            raise InvalidArgument(
                f"max_detections must be between 1 and {MAX_DETECTIONS_LIMIT}, got {self.max_detections}"
            )
        if self.max_candidates is not None and not 1 <= self.max_candidates <= MAX_CANDIDATES_LIMIT:
            raise InvalidArgument(
                f"max_candidates must be between 1 and {MAX_CANDIDATES_LIMIT}, got {self.max_candidates}"
            )
        if self.top_k is not None and self.top_k < 1:
            raise InvalidArgument(f"top_k must be at least 1, got {self.top_k}")
        if len(self.class_filter) > MAX_CLASS_FILTER:
            raise InvalidArgument(
                f"class_filter has {len(self.class_filter)} names; at most {MAX_CLASS_FILTER} are accepted"
            )
        if any(len(name) > MAX_CLASS_NAME_CHARS for name in self.class_filter):
            raise InvalidArgument(f"class_filter names must be at most {MAX_CLASS_NAME_CHARS} characters")

    def resolve(self, spec: ModelSpec) -> ResolvedParams:
        """Fill defaults from the model package and map class names to ids."""
        allowed: np.ndarray | None = None
        if self.class_filter:
            index = {name: i for i, name in enumerate(spec.class_names)}
            unknown = sorted({name for name in self.class_filter if name not in index})
            if unknown:
                raise InvalidArgument(
                    f"class_filter has {summarize(unknown, 'unknown class', 'unknown classes')}; they are not "
                    f"classes of this model, which has {summarize(spec.class_names, 'class', 'classes', listed=8)}"
                )
            allowed = np.array(sorted({index[name] for name in self.class_filter}), dtype=np.int64)
        d = spec.defaults
        return ResolvedParams(
            confidence=d.confidence if self.confidence is None else self.confidence,
            iou_threshold=d.iou_threshold if self.iou_threshold is None else self.iou_threshold,
            class_agnostic_nms=d.class_agnostic_nms if self.class_agnostic_nms is None else self.class_agnostic_nms,
            max_detections=d.max_detections if self.max_detections is None else self.max_detections,
            max_candidates=DEFAULT_MAX_CANDIDATES if self.max_candidates is None else self.max_candidates,
            allowed_class_ids=allowed,
            visualize=self.visualize,
            top_k=d.top_k if self.top_k is None else self.top_k,
            mask_format=self.mask_format,
        )


@dataclass(frozen=True)
class ResolvedParams:
    """Parameters with every default filled in, ready for post-processing."""

    confidence: float
    iou_threshold: float
    class_agnostic_nms: bool
    max_detections: int
    max_candidates: int
    allowed_class_ids: np.ndarray | None = field(default=None)
    visualize: bool = False
    top_k: int | None = None
    mask_format: MaskFormat = MaskFormat.OUTLINE
