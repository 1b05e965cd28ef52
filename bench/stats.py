"""Latency samples -> percentiles, and the run window every load driver shares."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean/max in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(ms.mean()),
            "max": float(ms.max())}


@dataclass
class Window:
    """Warm-up, then a measured window: completions inside it are recorded.

    Drivers keep their requests flowing from warm-up into the window, so it measures a
    steady state. The window closes at ``measure_s``, or later (up to 3x) until it holds
    ``min_samples`` completions.
    """

    warmup_s: float
    measure_s: float
    min_samples: int = 1
    started: float = field(default_factory=time.perf_counter)
    samples: list[tuple[float, Any]] = field(default_factory=list)  # (latency_s, payload)
    closed_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def t0(self) -> float:
        return self.started + self.warmup_s

    def done(self) -> bool:
        if self.closed_at is not None:
            return True
        now = time.perf_counter()
        if now < self.t0 + self.measure_s:
            return False
        if len(self.samples) >= self.min_samples or now >= self.t0 + 3 * self.measure_s:
            with self._lock:
                self.closed_at = self.closed_at or now
            return True
        return False

    def record(self, start: float, end: float, payload: Any = None) -> None:
        if end >= self.t0 and self.closed_at is None:
            with self._lock:
                if self.closed_at is None:
                    self.samples.append((end - start, payload))

    @property
    def elapsed_s(self) -> float:
        end = self.closed_at or time.perf_counter()
        return max(1e-9, end - self.t0)

    def summary(self) -> dict[str, Any]:
        latencies = [s for s, _ in self.samples]
        return {"count": len(latencies), "seconds": round(self.elapsed_s, 3),
                "throughput_rps": len(latencies) / self.elapsed_s, "latency_ms": latency_summary(latencies)}

