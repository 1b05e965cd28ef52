"""What the fleet is measured against, on the same trace and memory (loads take no time here):

- **random home + LRU**: each model always goes to one worker drawn at random, whose LRU (by count and
  bytes, as the worker's) holds it or loads it;
- **pooled LRU**: one cache as large as the whole fleet evicting the least recently used model, as each
  worker does: what placement could reach at best while workers evict by LRU (every worker's memory one cache,
  loads taking no time);
- **pooled Belady**: one cache as large as the whole fleet (every slot, every byte) that evicts the model
  used furthest in the future: a bound no placement across separate workers can beat.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict

import numpy as np

from bench.fleet_sim.workload import Scenario, Trace


def random_home_lru(scenario: Scenario, trace: Trace, seed: int) -> float:
    """The share of measured requests whose model was held by its home worker."""
    rng = np.random.default_rng(seed + 1)
    home = rng.integers(0, scenario.workers, size=scenario.models)
    caches: list[OrderedDict[int, int]] = [OrderedDict() for _ in range(scenario.workers)]
    used = [0] * scenario.workers
    hits = 0
    for i, model in enumerate(trace.models.tolist()):
        w = int(home[model])
        cache = caches[w]
        if model in cache:
            cache.move_to_end(model)
            hits += i >= trace.measured_from
            continue
        size = int(trace.sizes[model])
        cache[model] = size
        used[w] += size
        while len(cache) > scenario.max_models or used[w] > scenario.capacity_bytes:
            victim, victim_size = next(iter(cache.items()))
            if victim == model:
                break
            del cache[victim]
            used[w] -= victim_size
    return hits / max(1, len(trace.models) - trace.measured_from)


def pooled_lru(scenario: Scenario, trace: Trace) -> float:
    """The share of measured requests one LRU cache of the fleet's slots and bytes would hit."""
    slots, capacity = scenario.workers * scenario.max_models, scenario.workers * scenario.capacity_bytes
    cache: OrderedDict[int, int] = OrderedDict()
    used, hits = 0, 0
    for i, model in enumerate(trace.models.tolist()):
        if model in cache:
            cache.move_to_end(model)
            hits += i >= trace.measured_from
            continue
        size = int(trace.sizes[model])
        cache[model] = size
        used += size
        while len(cache) > slots or used > capacity:
            _, victim_size = cache.popitem(last=False)
            used -= victim_size
    return hits / max(1, len(trace.models) - trace.measured_from)


def pooled_belady(scenario: Scenario, trace: Trace) -> float:
    """The share of measured requests a pooled cache of the fleet's size evicting furthest-next-use would hit."""
    models = trace.models.tolist()
    n = len(models)
    next_use = [n] * n
    last: dict[int, int] = {}
    for i in range(n - 1, -1, -1):
        next_use[i] = last.get(models[i], n + models[i])  # never again: furthest, distinct per model
        last[models[i]] = i
    slots, capacity = scenario.workers * scenario.max_models, scenario.workers * scenario.capacity_bytes
    held: dict[int, int] = {}  # model -> its next use
    heap: list[tuple[int, int]] = []  # (-next use, model), stale entries skipped
    used, hits = 0, 0
    for i, model in enumerate(models):
        if model in held:
            hits += i >= trace.measured_from
        else:
            size = int(trace.sizes[model])
            while heap and (len(held) + 1 > slots or used + size > capacity):
                neg, victim = heapq.heappop(heap)
                if held.get(victim) == -neg:
                    del held[victim]
                    used -= int(trace.sizes[victim])
            used += size
        held[model] = next_use[i]
        heapq.heappush(heap, (-next_use[i], model))
    return hits / max(1, n - trace.measured_from)
