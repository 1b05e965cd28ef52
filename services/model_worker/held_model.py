"""What the worker holds for one loaded model: its sessions, batcher, files, load meter and its task's state
(one entry of the model manager's table: loaded, counted and evicted together)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.model_record import ModelRecord
from services.model_worker.batcher import Batcher
from services.model_worker.busyness import BusyMeter
from services.model_worker.runtime import Graph, Session


@dataclass
class HeldModel:
    """A model this worker holds: its first graph's session and batcher, its further graphs and files (one LRU
    entry: loaded, counted and evicted together)."""

    record: ModelRecord
    session: Session
    batcher: Batcher
    load_seconds: float
    pinned: bool = False
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    request_count: int = 0
    retired: bool = False
    meter: BusyMeter = field(default_factory=lambda: BusyMeter(60))
    graphs: dict[str, Graph] = field(default_factory=dict)  # model.json's further graphs, by name
    assets: dict[str, Path] = field(default_factory=dict)  # model.json's other files (checked copies), by name
    extras: dict[str, Any] = field(default_factory=dict)  # what its task keeps while it is held (a tokenizer, caches)

    def extra(self, name: str, make: Callable[[HeldModel], Any]) -> Any:
        """What its task keeps under ``name`` while the model is held, made by ``make(model)`` on first use."""
        value = self.extras.get(name)
        if value is None:
            value = self.extras[name] = make(self)
        return value

    @property
    def in_flight(self) -> int:
        """Requests holding the model now (acquired, not yet released)."""
        return self.meter.inside

    @property
    def model_id(self) -> str:
        return self.record.model_id

    @property
    def sha256(self) -> str:
        return self.record.spec.sha256

    @property
    def size_bytes(self) -> int:
        return self.session.size_bytes + sum(g.size_bytes for g in self.graphs.values())
