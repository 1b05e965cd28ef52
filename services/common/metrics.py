"""Prometheus instruments shared by every service (module-level, bounded labels).

The standard gRPC families are in ``services.common.grpc_metrics``; per-service ones in each
service's ``metrics.py``. Every metric is listed in docs/metrics.md.
"""

from __future__ import annotations

import functools
from typing import ClassVar, Self

import grpc
from prometheus_client import Counter, Gauge

from services.common.grpc_metrics import CODE_NAMES
from services.common.labels import model_label

ERRORS = Counter(
    "fleet_errors_total", "Errors answered to callers, by method and error class (finer than grpc_code).",
    ["grpc_service", "grpc_method", "kind"],
)
READY = Gauge("fleet_ready", "1 while the service reports SERVING.", ["service"])
DEPENDENCY_UP = Gauge(
    "fleet_dependency_up", "1 while the last check of a dependency (redis, registry) succeeded, else 0.",
    ["dependency"],
)
NATIVE_MESSAGES = Counter(
    "fleet_native_messages_total",
    "Lines native libraries wrote to stderr (libpng, libjpeg, onnxruntime, opencv, other), captured into the log.",
    ["library"],
)


class PerModelSeries:
    """Base of a service's per-model series: children bound once per model id (``of``), so the request
    path does no label lookups. Subclasses name their ``requests_family`` (labels model_id, outcome) and
    bind their other children in ``__init__``. Models past the cap share the ``other`` series."""

    requests_family: ClassVar[Counter]

    def __init__(self, label: str) -> None:
        self.label = label
        self._requests: dict[grpc.StatusCode, Counter] = {}
        self.requests(grpc.StatusCode.OK)  # the model's series exist from its first request on

    def requests(self, code: grpc.StatusCode) -> Counter:
        """The request counter child for outcome ``code``."""
        child = self._requests.get(code)
        if child is None:
            child = self._requests[code] = self.requests_family.labels(self.label, CODE_NAMES.get(code, "Unknown"))
        return child

    @classmethod
    @functools.lru_cache(maxsize=4096)
    def of(cls, model_id: str) -> Self:
        """The series of ``model_id`` (``other``'s past the cap)."""
        label = model_label(model_id)
        return cls(label) if label == model_id else cls._shared(label)

    @classmethod
    @functools.lru_cache(maxsize=16)
    def _shared(cls, label: str) -> Self:
        return cls(label)
