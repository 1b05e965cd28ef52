"""A late heartbeat does not drop a worker's copies at once (``services.gateway.grace``).

The decision over the real view (who is late, who is forgotten, whom routing tries, what counts for floors), then
real heartbeats in Redis with their real TTL read by the real ``WorkerPool`` under heartbeat discovery, and the
copies controller's real step: a holder whose beats stop for four intervals and resume gets no stand-in copy
(with the grace off, the same run places one). The processes themselves (a worker paused with SIGSTOP, one
killed with SIGKILL under load) are in tests/e2e/test_routing.py.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from services.cache import FleetCache
from services.cache.copies import CopyFloor
from services.gateway import routing
from services.gateway.copies import CopyController
from services.gateway.discovery import HeartbeatDiscovery, StaticDiscovery
from services.gateway.grace import kept_late, take_states
from services.gateway.placement import CopyPolicy, Target, copies_of, plan
from services.gateway.workers import WorkerPool
from tests.gateway.test_copy_floors import MODEL, OneModel, added_by
from tests.gateway.test_workers import SHA, load, state

ADDRESSES = [f"127.0.0.1:{i}" for i in (1, 2, 3, 4)]
GRACE_S = 5.0
TARGET = Target(MODEL.model_id, SHA, "demo", 1 << 20, floor=2)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(StaticDiscovery(ADDRESSES), 1 << 20, 2.0, 1.0, rng=random.Random(3), grace_s=GRACE_S)
    yield p
    await p.close()


def beats(pool: WorkerPool, sequence: int, *, without: tuple[int, ...] = (), **changed: object) -> dict:
    """One read of the heartbeats by address: every worker's (w0 and w1 hold the model), less ``without``."""
    out = {}
    for i, address in enumerate(ADDRESSES):
        if i in without:
            continue
        models = [load(MODEL.model_id, history=[0.0] * 3)] if i < 2 else []
        out[address] = changed.get(f"w{i}") or state(f"w{i}", address, *models, sequence=sequence)
    return out


def labels(pool: WorkerPool) -> list[str]:
    return [a.endpoint.label for a in routing.attempts(pool.view, MODEL.model_id, SHA, 1 << 20, pool.rng)]


async def test_a_late_worker_keeps_its_copies_for_the_grace_and_routing_prefers_the_others(pool: WorkerPool) -> None:
    view = pool.view
    take_states(view, beats(pool, 1), 0.0, GRACE_S)
    w0, w1 = pool.endpoints[ADDRESSES[0]], pool.endpoints[ADDRESSES[1]]
    taken = take_states(view, beats(pool, 2, without=(1,)), 10.0, GRACE_S)  # w1's record expired
    assert taken.late == [w1] and w1.late and w1.state is not None
    assert {e for e, _ in copies_of(view, TARGET)} == {w0, w1}  # still two copies: the floor is met
    assert not [a for a in plan(view, [TARGET], CopyPolicy())]  # so nothing is placed
    assert pool.holders(MODEL.model_id, SHA) == [w0] and set(pool.copies(MODEL.model_id, SHA)) == {w0, w1}
    assert labels(pool)[:2] == ["w0", "w1"]  # the fresh holder first, the late one before any new load
    assert "w1" not in [e.label for e in routing.homes(view, "other/1", 1 << 20)][:2]  # placed on last
    pool.report()

    take_states(view, beats(pool, 3, without=(0, 1)), 12.0, GRACE_S)  # both late: the late copies are all there is
    assert labels(pool)[0] in {"w0", "w1"} and set(labels(pool)[:2]) == {"w0", "w1"}

    take_states(view, beats(pool, 4, without=(0,)), 13.0, GRACE_S)  # w1's beat is back (w0 still late)
    assert not w1.late and w1.sequence == 4 and labels(pool)[0] == "w1"

    taken = take_states(view, beats(pool, 5, without=(0,)), 12.0 + GRACE_S, GRACE_S)  # w0's grace is over
    assert taken.expired == [w0] and w0.state is None and not w0.late
    assert {e for e, _ in copies_of(view, TARGET)} == {w1}
    assert [a.kind for a in plan(view, [TARGET], CopyPolicy())] == ["add"]  # now the floor places a copy


async def test_no_grace_for_a_worker_failed_by_a_call_draining_superseded_or_with_the_grace_off(
        pool: WorkerPool) -> None:
    view = pool.view
    take_states(view, beats(pool, 1), 0.0, GRACE_S)
    w = [pool.endpoints[a] for a in ADDRESSES]
    pool.mark_failed(w[0])  # a call could not reach it: routing failed over already
    draining = state("w1", ADDRESSES[1], load(MODEL.model_id), sequence=2, draining=True)
    take_states(view, beats(pool, 2, w1=draining), 1.0, GRACE_S)
    moved = state("w2", "10.0.0.9:50053", sequence=1, boot="restarted")  # w2 restarted at another address
    states = {a: s for a, s in beats(pool, 3).items() if a not in (ADDRESSES[0], ADDRESSES[1], ADDRESSES[2])}
    states[moved.address] = moved
    taken = take_states(view, states, 2.0, GRACE_S)
    assert taken.forgotten == [w[0], w[1], w[2]] and not taken.late
    assert all(e.state is None for e in w[:3]) and w[3].state is not None
    assert kept_late(w, states, 2.0, GRACE_S) == set()
    take_states(view, beats(pool, 4), 3.0, GRACE_S)
    assert take_states(view, beats(pool, 5, without=(3,)), 4.0, 0.0).forgotten == [w[3]]  # grace 0: as before


async def test_a_worker_marked_failed_while_late_is_forgotten_at_the_next_read(pool: WorkerPool) -> None:
    view = pool.view
    take_states(view, beats(pool, 1), 0.0, GRACE_S)
    w1 = pool.endpoints[ADDRESSES[1]]
    take_states(view, beats(pool, 2, without=(1,)), 1.0, GRACE_S)
    assert w1.late
    pool.mark_failed(w1)  # routing tried it (the only holder left, say) and it did not answer
    assert w1 not in {e for e, _ in copies_of(view, TARGET)}  # no longer a copy: the floor is short at once
    take_states(view, beats(pool, 3, without=(1,)), 1.5, GRACE_S)
    assert w1.state is None and not w1.late


# ---- real heartbeats in Redis, heartbeat discovery, the copies controller ------------------------------------

INTERVAL_S = 0.2  # the workers' heartbeat interval here; records live three of them, as a worker writes them


async def run_stall(cache: FleetCache, grace_s: float) -> tuple[int, list[bool], bool]:
    """Two holders of a model kept at two copies, two idle workers; w1's beats stop for four intervals, then
    resume. Returns the copies the controller placed meanwhile, whether w1 was late at each read, and whether
    it was in the view throughout."""
    addresses = [f"10.2.0.{i}:50053" for i in range(4)]
    pool = WorkerPool(HeartbeatDiscovery(cache.heartbeats), 1 << 20, 2.0, 1.0, rng=random.Random(1),
                      grace_s=grace_s)
    policy = CopyPolicy(release_window_s=1.0)
    controller = CopyController(pool, OneModel(), cache, policy, 1.0, 1.0)  # type: ignore[arg-type]
    sequence = 0

    async def beat(*which: int) -> None:
        nonlocal sequence
        sequence += 1
        for i in which:
            models = [load(MODEL.model_id, history=[0.0] * 3, interval=INTERVAL_S)] if i < 2 else []
            await cache.heartbeats.beat(state(f"w{i}", addresses[i], *models, sequence=sequence,
                                              interval=INTERVAL_S), 3 * INTERVAL_S)

    added, late, stayed = 0, [], True
    try:
        await controller.keep(CopyFloor(MODEL.model_id, MODEL.workspace, 2))
        await beat(0, 1, 2, 3)
        await pool.refresh()
        assert await added_by(controller) == 0
        # w1 stops for four intervals (its record expires after three), then beats again; the gateway reads the
        # heartbeats and plans every half interval, as it does every second against beats every two.
        for tick in range(14):
            if tick % 2 == 0:
                await beat(*((0, 2, 3) if tick < 8 else (0, 1, 2, 3)))
            await asyncio.sleep(INTERVAL_S / 2)
            await pool.refresh()
            w1 = pool.endpoints.get(addresses[1])
            stayed = stayed and w1 is not None
            late.append(w1 is not None and w1.late)
            added += await added_by(controller)
    finally:
        await controller.close()
        await pool.close()
    return added, late, stayed


async def test_a_holder_whose_beats_stop_for_four_intervals_gets_no_stand_in(cache: FleetCache) -> None:
    added, late, stayed = await run_stall(cache, grace_s=10 * INTERVAL_S)
    assert added == 0 and stayed
    assert any(late) and not late[-1]  # it was late for a while, and is not once its beats resumed


async def test_without_the_grace_the_same_stall_places_a_stand_in(cache: FleetCache) -> None:
    added, late, stayed = await run_stall(cache, grace_s=0.0)
    assert added >= 1 and not stayed and not any(late)
