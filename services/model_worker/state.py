"""The worker's published state (``fleet.internal.v1.WorkerState``): what gateways route and place by."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from google.protobuf.timestamp_pb2 import Timestamp

from fleet.internal.v1.worker_pb2 import ModelLoad, WorkerState
from services.model_worker.manager import HeldModel, ModelManager
from services.model_worker.runtime import available_providers, requested_providers


def model_load(model: HeldModel) -> ModelLoad:
    return ModelLoad(
        model_id=model.model_id, sha256=model.sha256, workspace=model.record.workspace,
        size_bytes=model.size_bytes, pinned=model.pinned, in_flight=model.in_flight,
        queued=model.batcher.queued, requests_per_second=model.meter.rate,
        outstanding_history=list(model.meter.history),
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

    def snapshot(self) -> WorkerState:
        """The state now, without closing a load interval (for DescribeModels)."""
        manager, limits = self.manager, self.manager.limits
        published = Timestamp()
        published.FromNanoseconds(time.time_ns())
        return WorkerState(
            worker_id=self.worker_id, address=self.address, boot_id=self.boot_id, sequence=self.sequence,
            published_at=published, interval_seconds=self.interval_s, draining=self.draining,
            max_models=limits.max_models, loaded_bytes=manager.total_bytes, capacity_bytes=limits.capacity_bytes,
            memory_free_fraction=round(manager.free_fraction(), 4),
            execution_providers=requested_providers(manager.runtime.execution_provider, available_providers()),
            models=[model_load(m) for m in manager.models()],  # least recently used first
        )

    def next(self) -> WorkerState:
        """The state for the next heartbeat: closes each model's load interval and counts up."""
        for model in self.manager.models():
            model.meter.sample()
        self.sequence += 1
        return self.snapshot()
