"""Bounded label values for metrics: a model id becomes its own series only while few enough exist.

Every service shares one ``MODEL_LABELS``: the first ``cap`` distinct model ids it sees keep their
own series; later ones are counted under ``other``, so a fleet with thousands of registered models
(or a caller trying ids) cannot blow up Prometheus. The cap is a setting
(``metrics_max_models``), applied by the service runner at start-up.
"""

from __future__ import annotations

import threading

OTHER = "other"
DEFAULT_MAX_MODELS = 200


class BoundedLabels:
    def __init__(self, cap: int = DEFAULT_MAX_MODELS) -> None:
        self.cap = cap
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        """``value`` itself while under the cap (or already seen), else ``other``."""
        if value in self._seen:
            return value
        with self._lock:
            if value in self._seen:
                return value
            if len(self._seen) >= self.cap:
                return OTHER
            self._seen.add(value)
            return value

    def configure(self, cap: int) -> None:
        with self._lock:
            self.cap = cap

    def reset(self) -> None:
        """Forget the values seen (tests)."""
        with self._lock:
            self._seen.clear()


MODEL_LABELS = BoundedLabels()


def model_label(model_id: str) -> str:
    """The ``model_id`` label value to use for ``model_id`` (itself, or ``other`` past the cap)."""
    return MODEL_LABELS(model_id)
