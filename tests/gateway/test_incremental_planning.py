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
