"""Incremental copy planning: a step looks only at the models whose copies changed, a bounded number of them."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from services.gateway.discovery import StaticDiscovery
from services.gateway.placement import Backlog, CopyPolicy, Target, plan
from services.gateway.workers import WorkerPool
from tests.gateway.test_workers import SHA, load, state

POLICY = CopyPolicy(max_copies=3, up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0)
SURGE = [9.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # plainly over capacity in the last interval (copies at once), no holder saturated


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(StaticDiscovery([f"127.0.0.1:{i}" for i in range(1, 7)]), 1 << 20, 2.0, 1.0, rng=random.Random(1))
    p.view.windows = (POLICY.up_window_s, POLICY.release_window_s)
    for i in range(1, 7):
        beat(p, i)  # every worker heartbeats (with room)
    p.view.changed.clear()
    yield p
    await p.close()


def beat(pool: WorkerPool, index: int, *models, sequence: int = 1) -> None:  # noqa: ANN002
    address = f"127.0.0.1:{index}"
    pool.endpoints[address].apply(state(f"w{index}", address, *models, sequence=sequence))


def targets(*model_ids: str) -> dict[str, Target]:
    return {m: Target(m, SHA, "demo") for m in model_ids}


async def test_a_step_looks_only_at_models_whose_copies_changed(pool: WorkerPool) -> None:
    backlog = Backlog()
    beat(pool, 1, load("a/1", rate=40, history=SURGE))
    beat(pool, 2, load("b/1", rate=40, history=SURGE))
    first = plan(pool.view, targets("a/1", "b/1"), POLICY, backlog=backlog)
    assert backlog.looked_at == 2 and sorted({a.model_id for a in first}) == ["a/1", "b/1"]
    # Nothing changed since: nothing is looked at (a stateless plan would decide the same copies again).
    assert plan(pool.view, targets("a/1", "b/1"), POLICY, backlog=backlog) == [] and backlog.looked_at == 0
    assert len(plan(pool.view, targets("a/1", "b/1"), POLICY)) == len(first)
    beat(pool, 2, load("b/1", rate=40, history=[12.0, *SURGE]), sequence=2)  # only b's figures changed
    again = plan(pool.view, targets("a/1", "b/1"), POLICY, backlog=backlog)
    assert backlog.looked_at == 1 and {a.model_id for a in again} == {"b/1"}
    beat(pool, 1, load("a/1", rate=40, history=[*SURGE, 1.0]), sequence=2)  # the same figures: not a change
    assert plan(pool.view, targets("a/1", "b/1"), POLICY, backlog=backlog) == [] and backlog.looked_at == 0


async def test_a_copy_whose_measurement_covers_the_window_is_looked_at_again(pool: WorkerPool) -> None:
    backlog = Backlog()
    beat(pool, 1, load("a/1", history=[0.0] * 4))  # two idle copies, not measured over the release window yet
    beat(pool, 2, load("a/1", history=[0.0] * 4))
    assert plan(pool.view, targets("a/1"), POLICY, backlog=backlog) == [] and backlog.looked_at == 1
    beat(pool, 1, load("a/1", history=[0.0] * 5), sequence=2)  # the same figures, still short of the window
    assert plan(pool.view, targets("a/1"), POLICY, backlog=backlog) == [] and backlog.looked_at == 0
    beat(pool, 1, load("a/1", history=[0.0] * 6), sequence=3)  # the same figures, both windows covered
    beat(pool, 2, load("a/1", history=[0.0] * 6), sequence=2)
    assert [a.reason for a in plan(pool.view, targets("a/1"), POLICY, backlog=backlog)] == ["cold"]


async def test_a_step_is_bounded_and_carries_the_rest_over(pool: WorkerPool) -> None:
    backlog = Backlog(budget=2)
    names = [f"m{i}/1" for i in range(5)]
    for i, name in enumerate(names):
        beat(pool, i + 1, load(name, rate=40, history=SURGE))
    seen = []
    for expected in (2, 2, 1, 0):
        actions = plan(pool.view, targets(*names), POLICY, backlog=backlog)
        assert backlog.looked_at == expected and backlog.deferred == max(0, 3 - len(seen))
        seen += sorted({a.model_id for a in actions})
    assert sorted(seen) == names  # every changed model was looked at once, oldest first
    assert seen[:2] == ["m0/1", "m1/1"]


async def test_a_busy_model_is_looked_at_before_older_changes(pool: WorkerPool) -> None:
    backlog = Backlog(budget=1)
    for i in (1, 2):  # an idle model with two copies: it could be released, so it is noted first
        beat(pool, i, load("idle/1", history=[0.0] * 7))
    beat(pool, 3, load("busy/1", rate=40, history=SURGE))
    plan(pool.view, targets("idle/1", "busy/1"), POLICY, backlog=backlog)
    assert backlog.looked_at == 1 and list(backlog.waiting) == ["idle/1"]  # the busy one went first
    plan(pool.view, targets("idle/1", "busy/1"), POLICY, backlog=backlog)
    assert backlog.looked_at == 1 and not backlog.waiting


async def test_the_models_with_the_most_busy_copies_are_taken_and_decided_first(pool: WorkerPool) -> None:
    """At thousands of workers a step cannot reach every busy model in its time: the hottest (by busy copies)
    go first, whatever their names or the order their changes came in."""
    names = ["a-warm/1", "m-hot/1", "z-hottest/1"]
    beat(pool, 1, load("a-warm/1", rate=40, history=SURGE))
    for i in (2, 3):
        beat(pool, i, load("m-hot/1", rate=40, history=SURGE))
    for i in (4, 5, 6):
        beat(pool, i, load("z-hottest/1", rate=40, history=SURGE))
    backlog = Backlog(budget=1)
    plan(pool.view, targets(*names), POLICY, backlog=backlog)
    assert backlog.looked_at == 1 and list(backlog.waiting) == ["a-warm/1", "m-hot/1"]
    for i, name in ((1, "a-warm/1"), (2, "m-hot/1"), (3, "m-hot/1"), (4, "z-hottest/1"), (5, "z-hottest/1"),
                    (6, "z-hottest/1")):  # every model changed again
        beat(pool, i, load(name, rate=60, history=SURGE), sequence=2)
    ticks = iter(range(1000))  # 10 ms each time planning reads the clock: out of time after the first model
    timed = Backlog(seconds=0.015, clock=lambda: next(ticks) / 100)
    first = plan(pool.view, targets(*names), POLICY, backlog=timed)
    assert {a.model_id for a in first} <= {"z-hottest/1"} and timed.out_of_time == 2  # the hottest decided first
    assert list(timed.waiting) == ["m-hot/1", "a-warm/1"]  # the rest, hottest first


async def test_a_step_stops_at_its_time_and_carries_the_models_not_reached_first_in_line(pool: WorkerPool) -> None:
    ticks = iter(range(1000))  # a clock that moves 10 ms each time planning reads it
    backlog = Backlog(seconds=0.025, clock=lambda: next(ticks) / 100)
    names = [f"m{i}/1" for i in range(5)]
    for i, name in enumerate(names):
        beat(pool, i + 1, load(name, rate=40, history=SURGE))
    first = plan(pool.view, targets(*names), POLICY, backlog=backlog)
    # The clock read once when the step began, then before each model and each further copy: out of time
    # after the first model's two copies; the others wait, first in line, and the next step takes them.
    assert {a.model_id for a in first} == {"m0/1"} and backlog.out_of_time == 4
    assert list(backlog.waiting) == names[1:] and backlog.looked_at == 1
    seen = {a.model_id for a in first}
    for _ in range(4):
        seen |= {a.model_id for a in plan(pool.view, targets(*names), POLICY, backlog=backlog)}
    assert seen == set(names) and not backlog.waiting


async def test_more_copies_of_a_model_with_many_walk_a_few_workers_not_past_every_copy() -> None:
    pool = WorkerPool(StaticDiscovery([f"127.0.0.1:{i}" for i in range(1, 61)]), 1 << 20, 2.0, 1.0,
                      rng=random.Random(1))
    walked = 0
    walk = pool.view.walk

    def counting(key: str):  # noqa: ANN202 - the ring walk, counted
        nonlocal walked
        for endpoint in walk(key):
            walked += 1
            yield endpoint

    try:
        pool.view.walk = counting  # type: ignore[method-assign]
        ring = [e.address for e in walk("hot/1")]
        # 40 copies, on the model's first 40 homes (where its walk put them), all plainly over capacity.
        for n, address in enumerate(ring):
            index = int(address.rsplit(":", 1)[1])
            models = [load("hot/1", rate=40, history=SURGE)] if n < 40 else []
            pool.endpoints[address].apply(state(f"w{index}", address, *models))
        actions = plan(pool.view, targets("hot/1"), POLICY.__class__(max_copies=44, up_load=4.0, up_window_s=3.0,
                                                                    release_load=0.5, release_window_s=6.0))
        assert len(actions) == 4 and all(a.endpoint.address in ring[40:] for a in actions)
        # Each new copy's walk starts at a point of its own (the same on every replica): the model's own walk
        # passed over the 40 copies for each of the 4 (over 160 workers looked at).
        assert walked < 4 * 40
    finally:
        await pool.close()
