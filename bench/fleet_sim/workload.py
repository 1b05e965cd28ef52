"""The simulated workload: models (sizes, Zipf popularity) and a Poisson stream of requests, from a seed.

One ``Trace`` drives the fleet and both baselines, so they see the same requests in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.model_worker.eviction import EvictionKind

MB = 1 << 20


@dataclass(frozen=True)
class Scenario:
    name: str
    workers: int
    models: int
    requests: int  # simulated requests (scaled down from a real hour so a run takes minutes)
    gateways: int = 3
    load: float = 0.5  # arrivals as a fraction of the fleet's serving capacity
    zipf: float = 1.0
    min_mb: int = 20
    max_mb: int = 500
    run_s: float = 0.05  # seconds per request on a worker
    max_models: int = 8
    capacity_bytes: int = 1536 * MB
    max_queue: int = 256  # requests per model waiting on one worker before it answers "queue full"
    heartbeat_s: float = 2.0
    refresh_s: float = 1.0
    eviction: EvictionKind = "gdsf"  # the workers' eviction policy (services.model_worker.eviction)
    warmup: float = 0.3  # the first part of the requests fills the caches and is not counted
    prefill: bool = False  # workers start full of idle models (the steady state of a long run's model lists)

    @property
    def rate(self) -> float:
        """Requests per second: ``load`` of what the workers serve (one request at a time each)."""
        return self.load * self.workers / self.run_s


@dataclass
class Trace:
    sizes: np.ndarray  # bytes per model
    times: np.ndarray  # arrival time of each request (s)
    models: np.ndarray  # model index of each request
    gateways: np.ndarray  # gateway each request arrives at
    measured_from: int  # requests before this index are warm-up


def trace(scenario: Scenario, seed: int) -> Trace:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(scenario.min_mb * MB, scenario.max_mb * MB, size=scenario.models)
    weights = 1.0 / np.arange(1, scenario.models + 1) ** scenario.zipf
    ranks = rng.choice(scenario.models, size=scenario.requests, p=weights / weights.sum())
    popularity_order = rng.permutation(scenario.models)  # the most popular model is any model
    times = np.cumsum(rng.exponential(1.0 / scenario.rate, size=scenario.requests))
    gateways = rng.integers(0, scenario.gateways, size=scenario.requests)
    return Trace(sizes, times, popularity_order[ranks], gateways, int(scenario.requests * scenario.warmup))


def model_name(index: int) -> str:
    return f"m{index}/1"
