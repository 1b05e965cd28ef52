"""The worker's published state (``fleet.internal.v1.WorkerState``): what gateways route and place by.

Load is published as summaries, not histories: per model and for the whole worker, the mean requests inside
over the last interval, the lowest such mean over ``load_window_s`` and the highest over ``release_window_s``
(a few bytes per model, whatever the windows), so heartbeat reads stay small at thousands of workers.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp

from fleet.internal.v1.worker_pb2 import ModelLoad, WorkerState
from services.model_worker.busyness import BusyMeter
from services.model_worker.held_model import HeldModel
from services.model_worker.manager import ModelManager
from services.model_worker.runtime import available_providers, requested_providers


def intervals(window_s: float, interval_s: float) -> int:
    """Heartbeat intervals a window spans (at least one)."""
    return max(1, math.ceil(window_s / interval_s - 1e-9)) if interval_s > 0 else 1


def model_load(model: HeldModel, interval_s: float, low_n: int, high_n: int, now: float) -> ModelLoad:
    meter: BusyMeter = model.meter
    return ModelLoad(
        model_id=model.model_id, sha256=model.sha256, workspace=model.record.workspace,
        size_bytes=model.size_bytes, pinned=model.pinned, in_flight=model.in_flight,
        queued=model.batcher.queued, requests_per_second=meter.rate,
        outstanding=meter.last, outstanding_low=meter.low(low_n), outstanding_high=meter.high(high_n),
        measured_seconds=meter.sampled * interval_s, idle_seconds=max(0.0, now - model.last_used),
    )


@dataclass
class StatePublisher:
    """Builds successive states of one worker process: same boot id, a rising sequence."""

    worker_id: str
    manager: ModelManager
    interval_s: float
    address: str = ""
    draining: bool = False
    boot_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sequence: int = 0
    load_window_s: float = 10.0
    release_window_s: float = 60.0
    _totals: deque[float] = field(default_factory=lambda: deque(maxlen=1024))  # the worker's load, newest first

    def snapshot(self) -> WorkerState:
        """The state now, without closing a load interval (for DescribeModels)."""
        manager, limits = self.manager, self.manager.limits
        published = Timestamp()
        published.FromNanoseconds(time.time_ns())
        low_n, high_n = intervals(self.load_window_s, self.interval_s), intervals(self.release_window_s, self.interval_s)
        totals = list(self._totals)
        return WorkerState(
            worker_id=self.worker_id, address=self.address, boot_id=self.boot_id, sequence=self.sequence,
            published_at=published, interval_seconds=self.interval_s, draining=self.draining,
            max_models=limits.max_models, loaded_bytes=manager.total_bytes, capacity_bytes=limits.capacity_bytes,
            memory_free_fraction=round(manager.free_fraction(), 4),
            execution_providers=requested_providers(manager.runtime.execution_provider, available_providers()),
            models=[model_load(m, self.interval_s, low_n, high_n, time.time()) for m in manager.models()],  # LRU 1st
            loads_in_progress=manager.loads_in_progress, models_loading=sorted(manager.loading),
            outstanding=totals[0] if totals else 0.0,
            outstanding_low=min(totals[:low_n], default=0.0), outstanding_high=max(totals[:high_n], default=0.0),
            load_window_seconds=self.load_window_s, release_window_seconds=self.release_window_s,
        )

    def next(self) -> WorkerState:
        """The state for the next heartbeat: closes each model's load interval and counts up."""
        total = 0.0
        for model in self.manager.models():
            model.meter.sample()
            total += model.meter.last
        self._totals.appendleft(total)
        self.sequence += 1
        return self.snapshot()
