"""The fleet simulator drives the gateway's real decision code: a small fleet, a few seconds simulated."""

from __future__ import annotations

from dataclasses import replace

from bench.fleet_sim.baselines import pooled_belady, pooled_lru, random_home_lru
from bench.fleet_sim.engine import Fleet
from bench.fleet_sim.workload import Scenario, trace

SMALL = Scenario("small", workers=12, models=300, requests=6_000)


def test_a_small_fleet_serves_every_request_and_loads_each_cold_model_once() -> None:
    t = trace(SMALL, seed=3)
    fleet = Fleet(SMALL, t, seed=3)
    stats = fleet.run()
    assert stats.measured == SMALL.requests - t.measured_from and stats.rejected == 0
    assert stats.duplicate_loads <= stats.cold_loads // 500  # loads in flight are seen by every gateway
    assert 0.2 < stats.hits / stats.measured < 1.0
    assert sum(stats.served_by.values()) == stats.measured
    gateway = fleet.gateways[0]
    assert gateway.route_seconds and gateway.plan_seconds and gateway.bytes_read > 0
    # The views are the real ones: the holder index lists what the last heartbeats say each worker holds (less
    # what this gateway's calls found gone since).
    for worker in fleet.workers:
        endpoint = gateway.view.endpoints[worker.address]
        if endpoint.state is not None:
            assert {m.model_id for m in endpoint.state.models} - endpoint.gone.keys() <= endpoint.indexed.keys()


def test_the_bound_is_above_the_baseline_and_both_see_the_same_trace() -> None:
    scenario = replace(SMALL, requests=20_000)
    t = trace(scenario, seed=5)
    baseline, lru, bound = random_home_lru(scenario, t, 5), pooled_lru(scenario, t), pooled_belady(scenario, t)
    assert 0.0 < baseline < lru < bound < 1.0  # one LRU of the fleet's memory beats separate ones, Belady both
    assert random_home_lru(scenario, trace(scenario, seed=5), 5) == baseline  # same seed, same figures


def test_the_simulated_workers_evict_with_the_workers_own_policy_and_gdsf_beats_lru() -> None:
    """The workers' ``Eviction`` (services.model_worker.eviction) picks the victims: it tracks exactly what
    each holds, and on this trace GDSF (the default) serves more requests from a held model than LRU."""
    rates = {}
    for kind in ("gdsf", "lru"):
        scenario = replace(SMALL, eviction=kind)
        fleet = Fleet(scenario, trace(scenario, seed=3), seed=3)
        stats = fleet.run()
        for worker in fleet.workers:
            assert worker.eviction.kind == kind
            assert len(worker.eviction) == len(worker.held) and all(m in worker.eviction for m in worker.held)
        rates[kind] = stats.hits / stats.measured
    assert rates["gdsf"] > rates["lru"] + 0.03, rates  # 69.8 % against 60.8 % when written


def test_models_a_worker_starts_with_are_evicted_as_any_other_and_the_limits_hold() -> None:
    """A worker that starts full of idle models (``Scenario.prefill``, the 2,000 x 64 case) evicts them as the
    real worker would any model it loaded: they are known to its eviction policy, and loading more models keeps
    it within ``max_models``. (They were once left out of the policy, so never evicted: every later load evicted
    the one before it, and the 2,000 x 64 figures measured a worker with one slot that turned over.)"""
    import heapq

    from bench.fleet_sim.engine import Request

    scenario = replace(SMALL, max_models=4, prefill=True)
    fleet = Fleet(scenario, trace(scenario, seed=3), seed=3)
    worker = fleet.workers[0]
    started_with = list(worker.held)
    assert len(started_with) == 4 and all(m in worker.eviction for m in started_with)
    fresh = [fleet.name(i) for i in range(scenario.models) if fleet.name(i) not in worker.held][:3]
    for i, model in enumerate(fresh):
        assert worker.call(Request(i, model, 0.0), existing=False) == "ok"
    while worker.loading:
        when, _, fn, args = heapq.heappop(fleet._events)
        fleet.now = when
        fn(*args)
    assert len(worker.held) == 4 and set(fresh) <= set(worker.held)
    assert len([m for m in started_with if m in worker.held]) == 1  # three of the idle ones made room
    assert len(worker.eviction) == len(worker.held)


def test_the_simulated_workers_take_waiting_loads_in_the_workers_demand_order() -> None:
    """Two loads run; a large model asked for once, then a smaller one asked for three times, wait: the worker's
    ``load_queue.pick`` loads the smaller, busier one first (first come first served would not)."""
    import heapq

    from bench.fleet_sim.engine import Request

    fleet = Fleet(SMALL, trace(SMALL, seed=3), seed=3)
    worker = fleet.workers[0]
    by_size = sorted(range(SMALL.models), key=lambda i: fleet.trace.sizes[i])
    lone, busy = fleet.name(by_size[-1]), fleet.name(by_size[0])
    order: list[str] = []
    loaded = worker._loaded
    worker._loaded = lambda model, size: (order.append(model), loaded(model, size))  # type: ignore[method-assign]
    asked = [fleet.name(by_size[1]), fleet.name(by_size[2]), lone, busy, busy, busy]
    for i, model in enumerate(asked):
        assert worker.call(Request(i, model, 0.0), existing=False) == "ok"
    assert worker.loads_running == 2 and len(worker.load_queue) == 2
    while len(order) < 4:
        when, _, fn, args = heapq.heappop(fleet._events)
        fleet.now = when
        fn(*args)
    assert order[2:] == [busy, lone]


def test_the_report_tells_how_many_workers_are_over_the_balance_goal_not_only_the_busiest() -> None:
    from bench.fleet_sim.report import per_worker

    spread = per_worker([10] * 98 + [16, 40])  # mean 10.36: 16 is 1.54 x, 40 is 3.86 x
    assert spread["over"] == 2 and abs(spread["max"] - 40 / 10.36) < 1e-9
    assert abs(spread["quantiles"]["0.5"] - 10 / 10.36) < 1e-9
    assert spread["quantiles"]["0.5"] <= spread["quantiles"]["0.99"] <= spread["quantiles"]["0.999"] <= spread["max"]
    assert per_worker([7] * 5)["over"] == 0 and per_worker([7] * 5)["max"] == 1.0
