"""How many copies a model's demand calls for, and when it has one too many: pure rules over the copies'
heartbeat summaries (``placement`` decides where; its docstring tells what each rule is for).

A copy is a worker holding the model and its ``ModelLoad`` from that worker's heartbeat: the mean requests inside
over the last interval (``outstanding``), the lowest over the load window (``outstanding_low``), the highest over
the release window (``outstanding_high``), its requests per second and how long it has been measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleet.internal.v1.worker_pb2 import ModelLoad
from services.gateway.endpoint import WorkerEndpoint

Copy = tuple[WorkerEndpoint, ModelLoad]


@dataclass(frozen=True)
class CopyPolicy:
    max_copies: int = 0  # 0: up to every worker
    up_load: float = 4.0
    up_window_s: float = 10.0
    release_load: float = 0.5
    release_window_s: float = 60.0
    surge: float = 2.0  # the last interval's load per copy over surge x up_load adds copies at once
    # A model whose copies take more than rate_up x the mean worker's requests per second each (the fleet's
    # busiest workers: lone holders of a hot model, between queues too often for up_load) gets copies enough to
    # bring that to rate_to x the mean each. 0: off.
    rate_up: float = 1.4
    rate_to: float = 1.0


def covers(copy: Copy, window_s: float) -> bool:
    """The copy has been measured over the whole window (a moment's tolerance for heartbeat jitter)."""
    endpoint, load = copy
    interval = endpoint.state.interval_seconds if endpoint.state is not None else 0.0
    return load.measured_seconds + 0.5 * interval >= window_s


def _own(mine: float, worker: float) -> float:
    """A copy's load as its own demand: where several models share a worker, the worker's queue lengthens every
    model's requests, so a copy's figure counts by its share of the worker's (``mine`` of ``worker``): a model
    that makes most of a busy worker's load keeps nearly all of it; one of many, waiting behind the others,
    little (relief, not its own copies, answers that worker's load)."""
    if worker <= mine or worker <= 0.0:
        return mine
    return mine * mine / worker


def own_low(copy: Copy) -> float:
    endpoint, load = copy
    return _own(load.outstanding_low, endpoint.state.outstanding_low if endpoint.state else 0.0)


def own_last(copy: Copy) -> float:
    endpoint, load = copy
    return _own(load.outstanding, endpoint.state.outstanding if endpoint.state else 0.0)


def is_hot(copies: list[Copy], policy: CopyPolicy) -> bool:
    if not copies or not all(covers(c, policy.up_window_s) for c in copies):
        return False
    return sum(own_low(c) for c in copies) / len(copies) > policy.up_load


def is_cold(copies: list[Copy], policy: CopyPolicy) -> bool:
    if len(copies) < 2 or not all(covers(c, policy.release_window_s) for c in copies):
        return False
    return sum(load.outstanding_high for _, load in copies) / (len(copies) - 1) < policy.release_load


def wanted(copies: list[Copy], policy: CopyPolicy, pending: int = 0) -> int:
    """How many copies the model's demand calls for (0: no more than it has)."""
    n = len(copies) + pending
    if not copies:
        return 0
    if is_hot(copies, policy):
        return max(n + (pending == 0), math.ceil(sum(own_low(c) for c in copies) / policy.up_load))
    last = sum(own_last(c) for c in copies)
    if last / n > policy.surge * policy.up_load:
        return math.ceil(last / policy.up_load)
    return 0


def rate_by_cost(copy: Copy) -> float:
    """The copy's requests per second weighed by what they cost its worker: the worker's rate times the model's
    share of its requests inside (by Little's law the rate times the time each spends inside, queue included).
    Requests per second alone count a 3 ms classifier's request like a 30 ms segmenter's; beside each other on one
    worker the segmenter's 8 a second (3.9 inside) outweigh the classifier's 150 (1.6 inside). Where every request
    costs alike, or the model is alone on its worker, this is its own rate."""
    endpoint, load = copy
    state = endpoint.state
    if state is None or state.outstanding <= 0.0 or load.outstanding <= 0.0:
        return load.requests_per_second
    return endpoint.rate * min(1.0, load.outstanding / state.outstanding)


def by_rate(copies: list[Copy], policy: CopyPolicy, mean_rate: float, pending: int = 0) -> int:
    """How many copies the model's request rate (weighed by cost) calls for against the mean worker's (0: no more
    than it has)."""
    if not copies or not policy.rate_up or mean_rate <= 0.0 or not all(covers(c, policy.up_window_s) for c in copies):
        return 0
    rate = sum(rate_by_cost(c) for c in copies)
    have = len(copies) + pending
    if rate / have <= policy.rate_up * mean_rate:
        return 0
    busiest = sum(load.outstanding_high for _, load in copies)
    if busiest <= have:  # its requests never overlapped beyond one a copy (a lone caller, however fast its model):
        return 0  # another copy would serve none of them sooner
    want = math.ceil(rate / (policy.rate_to * mean_rate))
    if policy.release_load > 0.0:  # never more than the release rule would keep (no add-release flapping where
        # the whole fleet is quiet and a model's share of its requests is large but its load small)
        want = min(want, 1 + int(busiest / policy.release_load))
    return want
