"""The gateway's view of workers and whom it tries: load-aware choice, placement order, membership.

Pure logic over typed heartbeats (``WorkerState``); the processes are covered in tests/e2e.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from fleet.internal.v1.worker_pb2 import ModelLoad, WorkerState
from services.gateway import routing
from services.gateway.discovery import StaticDiscovery
from services.gateway.workers import WorkerEndpoint, WorkerPool

SHA = "ab" * 32
MB = 1 << 20


LOW_N, HIGH_N = 3, 6  # the heartbeat intervals the worker's load and release windows span in these tests


def load(model_id: str, in_flight: int = 0, rate: float = 0.0, history: list[float] | None = None,
         size: int = 10 * MB, pinned: bool = False, sha: str = SHA, interval: float = 1.0) -> ModelLoad:
    """A model's heartbeat entry; ``history``: its mean load per interval, newest first, as the worker's meter
    keeps it, published as the worker does (last, lowest over LOW_N, highest over HIGH_N, measured span)."""
    h = history or []
    return ModelLoad(model_id=model_id, sha256=sha, workspace="demo", size_bytes=size, pinned=pinned,
                     in_flight=in_flight, requests_per_second=rate, outstanding=h[0] if h else 0.0,
                     outstanding_low=min(h[:LOW_N], default=0.0), outstanding_high=max(h[:HIGH_N], default=0.0),
                     measured_seconds=len(h) * interval)


def state(worker_id: str, address: str, *models: ModelLoad, sequence: int = 1, boot: str = "b1",
          max_models: int = 8, capacity: int = 0, draining: bool = False, interval: float = 1.0) -> WorkerState:
    """The worker's summaries summed from its models' (the worker sums per interval: equal where models' loads
    are steady)."""
    return WorkerState(worker_id=worker_id, address=address, boot_id=boot, sequence=sequence,
                       interval_seconds=interval, draining=draining, max_models=max_models,
                       loaded_bytes=sum(m.size_bytes for m in models), capacity_bytes=capacity, models=list(models),
                       outstanding=sum(m.outstanding for m in models),
                       outstanding_low=sum(m.outstanding_low for m in models),
                       outstanding_high=sum(m.outstanding_high for m in models),
                       load_window_seconds=LOW_N * interval, release_window_seconds=HIGH_N * interval)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(StaticDiscovery([f"127.0.0.1:{i}" for i in (1, 2, 3)]), 1 << 20, 2.0, 1.0, rng=random.Random(7))
    yield p
    await p.close()


def endpoints(pool: WorkerPool) -> list[WorkerEndpoint]:
    return [pool.endpoints[f"127.0.0.1:{i}"] for i in (1, 2, 3)]


def order(pool: WorkerPool, model_id: str = "m/1") -> list[tuple[str, bool]]:
    return [(a.endpoint.label, a.existing) for a in routing.attempts(pool.view, model_id, SHA, 10 * MB, pool.rng)]


async def test_power_of_two_choices_spreads_a_model_over_its_holders_by_load(pool: WorkerPool) -> None:
    a, b, c = endpoints(pool)
    for i, ep in enumerate((a, b, c)):
        ep.apply(state(f"w{i}", ep.address, load("m/1")))
    firsts = Counter(order(pool)[0][0] for _ in range(600))
    assert set(firsts) == {"w0", "w1", "w2"} and min(firsts.values()) > 120  # equal load: all share
    a.in_flight = a.copy_calls = 5  # this gateway has five calls on w0's copy now
    firsts = Counter(order(pool)[0][0] for _ in range(600))
    assert "w0" not in firsts  # of any pair drawn, w0 is the busier
    # Others' load comes from the heartbeat: w1 holds 9 requests, none of them this gateway's.
    b.apply(state("w1", b.address, load("m/1", in_flight=9), sequence=2))
    assert b.outstanding() == 9 and a.outstanding() == 5
    a.apply(state("w0", a.address, load("m/1", in_flight=7), sequence=2))  # five of its seven are this gateway's
    assert a.outstanding() == 7
    assert Counter(order(pool)[0][0] for _ in range(300)).most_common(1)[0][0] == "w2"
    attempts = order(pool)
    assert [existing for _, existing in attempts] == [True, True, True]  # every holder before any placement


async def test_calls_waiting_for_a_load_do_not_make_a_holder_look_busy(pool: WorkerPool) -> None:
    """A new copy on a worker with a long load queue: this gateway's placements there wait for a load thread, not
    for its models. Counted as its load, they sent the copy's model back to the lone busy holder (issue 30)."""
    a, b, _ = endpoints(pool)
    a.apply(state("w0", a.address, load("m/1", in_flight=4)))  # the copy: 4 requests of other gateways inside
    b.apply(state("w1", b.address, load("m/1", in_flight=9)))  # the holder it relieves
    with contextlib.ExitStack() as calls:
        for _ in range(20):  # placements of other models, waiting for their loads on w0
            calls.enter_context(pool.calling(a, existing=False))
        calls.enter_context(pool.calling(a))  # and one call to its copy
        assert a.in_flight == 21 and a.outstanding() == 5 and b.outstanding() == 9
        assert {order(pool)[0][0] for _ in range(50)} == {"w0"}
        a.apply(state("w0", a.address, load("m/1", in_flight=5), sequence=2))  # the heartbeat counts that one
        assert a.outstanding() == 5  # 1 of this gateway's + 4 of others', the placements' 20 in neither
    assert a.in_flight == a.copy_calls == 0


async def test_a_model_nobody_holds_goes_where_there_is_room_the_same_way_on_every_replica(pool: WorkerPool) -> None:
    a, b, c = endpoints(pool)
    a.apply(state("w0", a.address, *(load(f"x{i}/1") for i in range(2)), max_models=2))  # full
    b.apply(state("w1", b.address, load("y/1", history=[6.0]), max_models=4))  # room, but over its share of load
    c.apply(state("w2", c.address, load("z/1", history=[0.5]), max_models=4))  # room, quiet
    # Bounded load: w1 (6 inside, the fleet's mean 2.2) is passed over; of the rest, room first.
    assert order(pool, "cold/1") == [("w2", False), ("w0", False), ("w1", False)]
    other = WorkerPool(StaticDiscovery([e.address for e in (c, a, b)]), 1 << 20, 2.0, 1.0, rng=random.Random(99))
    try:
        for ep in (c, a, b):  # another replica, reading the same heartbeats in another order
            other.endpoints[ep.address].apply(ep.state)
        assert order(other, "cold/1") == order(pool, "cold/1")
    finally:
        await other.close()
    c.apply(state("w2", c.address, load("z/1", history=[0.5]), max_models=4, draining=True, sequence=2))
    assert order(pool, "cold/1")[0] == ("w0", False)  # a draining worker takes no new model
    assert ("w2", False) not in order(pool, "cold/1")


async def test_a_worker_taking_more_requests_a_second_than_its_share_is_passed_over_for_new_models(
        pool: WorkerPool) -> None:
    a, b, c = endpoints(pool)
    # w1 holds the model two thirds of the fleet's requests go to; in the moment its heartbeat measured, as few
    # were inside it as anywhere (the last interval's mean inside is a noisy figure: a busy worker often reads low).
    a.apply(state("w0", a.address, load("x/1", rate=3.0, history=[0.3]), max_models=4))
    b.apply(state("w1", b.address, load("hot/1", rate=18.0, history=[0.3]), max_models=4))
    c.apply(state("w2", c.address, load("z/1", rate=3.0, history=[0.3]), max_models=4))
    assert pool.view.mean_rate == pytest.approx(8.0)
    assert routing.over_share(b, pool.view.mean_busy, pool.view.mean_rate)
    assert not routing.over_share(a, pool.view.mean_busy, pool.view.mean_rate)
    for i in range(30):  # whichever worker is a model's first home, w1 comes last
        assert [e.label for e in routing.homes(pool.view, f"cold{i}/1", MB)][-1] == "w1"
    # Its next heartbeat: the hot model's requests spread (copies elsewhere took most): within its share again.
    b.apply(state("w1", b.address, load("hot/1", rate=4.0, history=[0.3]), max_models=4, sequence=2))
    assert pool.view.mean_rate == pytest.approx(10.0 / 3)
    assert not routing.over_share(b, pool.view.mean_busy, pool.view.mean_rate)
    assert sorted(e.label for e in routing.homes(pool.view, "cold0/1", MB)) == ["w0", "w1", "w2"]
    pool.view.remove(b.address)  # the fleet's rate follows its workers
    assert pool.view.mean_rate == pytest.approx(3.0)


async def test_eviction_victims_rank_placement_when_no_worker_has_room(pool: WorkerPool) -> None:
    a, b, c = endpoints(pool)
    a.apply(state("w0", a.address, load("hot/1", rate=50.0), load("warm/1", rate=5.0), max_models=2))
    b.apply(state("w1", b.address, load("cold/1", rate=0.1), load("warm/2", rate=9.0), max_models=2))
    c.apply(state("w2", c.address, load("pinned/1", pinned=True), load("hotter/1", rate=80.0), max_models=2))
    room = routing.room_for(b, 10 * MB)
    assert room is not None and room.fits and [v.model_id for v in room.victims] == ["cold/1"]
    room = routing.room_for(c, 10 * MB)  # the pinned model is skipped: the LRU would take hotter/1
    assert room is not None and [v.model_id for v in room.victims] == ["hotter/1"]
    assert [label for label, _ in order(pool, "new/1")] == ["w1", "w0", "w2"]
    byte_bound = state("w0", a.address, load("a/1", size=60 * MB), load("b/1", size=30 * MB), max_models=8,
                       capacity=100 * MB, sequence=2)
    a.apply(byte_bound)
    room = routing.room_for(a, 20 * MB)  # 90 + 20 > 100: the least recently used goes
    assert room is not None and [v.model_id for v in room.victims] == ["a/1"]
    assert not routing.room_for(a, 200 * MB).fits


async def test_holders_of_another_version_are_not_holders(pool: WorkerPool) -> None:
    a, b, _ = endpoints(pool)
    a.apply(state("w0", a.address, load("m/1", sha="cd" * 32)))
    b.apply(state("w1", b.address, load("m/1")))
    assert order(pool)[0] == ("w1", True)
    assert ("w0", False) in order(pool)  # w0 would load the current version in place of its old one


async def test_a_failed_worker_leaves_rotation_until_a_later_heartbeat(pool: WorkerPool) -> None:
    a, b, _ = endpoints(pool)
    a.apply(state("w0", a.address, load("m/1"), sequence=10))
    b.apply(state("w1", b.address, load("m/1"), sequence=4))
    pool.mark_failed(a)
    assert order(pool)[0] == ("w1", True) and order(pool)[-1] == ("w0", False)  # out of rotation: a last resort
    # The next heartbeat read may have been published just before the worker died: it proves nothing.
    assert not a.apply(state("w0", a.address, load("m/1"), sequence=11)) and a.failed
    assert order(pool)[-1] == ("w0", False)
    assert a.apply(state("w0", a.address, load("m/1"), sequence=12)) and not a.failed
    assert ("w0", True) in order(pool)[:2]
    pool.mark_failed(b)
    assert b.apply(state("w1", b.address, sequence=1, boot="restarted"))  # a new process: back at once
    assert not b.holds("m/1", SHA)


async def test_calls_teach_the_view_before_heartbeats_do(pool: WorkerPool) -> None:
    a, b, _ = endpoints(pool)
    a.apply(state("w0", a.address, load("m/1"), sequence=5))
    b.apply(state("w1", b.address, sequence=5))
    pool.note_gone(a, "m/1")  # a call found the copy gone (evicted, released)
    assert not a.holds("m/1", SHA)
    a.apply(state("w0", a.address, load("m/1"), sequence=6))  # possibly published before that call
    assert not a.holds("m/1", SHA)
    a.apply(state("w0", a.address, sequence=7))
    assert not a.holds("m/1", SHA) and not a.gone
    pool.note_serving(b, "m/1", SHA)  # a call loaded it there: routable before any heartbeat says so
    assert b.holds("m/1", SHA)
    b.apply(state("w1", b.address, sequence=6))
    assert b.holds("m/1", SHA)
    b.apply(state("w1", b.address, sequence=7))  # a heartbeat surely published after: authoritative again
    assert not b.holds("m/1", SHA)


async def test_without_heartbeats_calls_alone_decide_and_failed_workers_are_probed(pool: WorkerPool) -> None:
    a, b, c = endpoints(pool)
    first = order(pool, "m/1")
    assert [existing for _, existing in first] == [False, False, False]
    assert first == order(pool, "m/1")  # stable: a rendezvous hash of model and worker
    holder = pool.endpoints[pool.all()[0].address]
    pool.note_serving(holder, "m/1", SHA)
    assert order(pool, "m/1")[0] == (holder.label, True)
    pool.mark_failed(c)
    c.next_probe = 0.0
    await pool.refresh()  # no Redis: the failed worker is health-checked (nothing listens on these ports)
    assert c.failed and c.next_probe > 0


async def test_a_holder_whose_copy_is_gone_becomes_the_place_to_load_it_again(pool: WorkerPool) -> None:
    a, b, c = endpoints(pool)
    a.apply(state("w0", a.address, load("m/1")))
    for ep in (b, c):
        ep.apply(state(f"w{ep.address[-1]}", ep.address, *(load(f"x{i}/1") for i in range(8))))  # full
    seen = []
    for attempt in routing.attempts(pool.view, "m/1", SHA, 10 * MB, pool.rng):
        seen.append((attempt.endpoint.label, attempt.existing))
        if attempt.existing:
            pool.note_gone(attempt.endpoint, "m/1")  # its LRU evicted the model since the last heartbeat
    assert seen[0] == ("w0", True) and seen[1] == ("w0", False)  # loaded again where there was a copy (room)


async def test_workers_out_of_rotation_are_tried_last_and_come_back_when_a_call_succeeds(pool: WorkerPool) -> None:
    a, b, c = endpoints(pool)
    for ep in (a, b, c):
        ep.apply(state(f"w{ep.address[-1]}", ep.address, load("m/1")))
    pool.mark_failed(a)
    assert [label for label, _ in order(pool)][-1] == "w1"  # never first while others can serve
    for ep in (b, c):
        pool.mark_failed(ep)
    assert sorted(label for label, _ in order(pool)) == ["w1", "w2", "w3"]  # all out: still worth a try
    pool.note_serving(b, "m/1", SHA)
    assert not b.failed and order(pool)[0] == ("w2", True)


async def test_the_holder_index_follows_heartbeats_and_calls_and_homes_do_not_depend_on_who_asks(
        pool: WorkerPool) -> None:
    a, b, c = endpoints(pool)
    a.apply(state("w0", a.address, load("m/1"), load("n/1")))
    b.apply(state("w1", b.address, load("m/1")))
    c.apply(state("w2", c.address))
    assert set(pool.view.holding("m/1")) == {a, b} and pool.view.holding("n/1") == [a]
    a.apply(state("w0", a.address, load("n/1"), sequence=2))  # m/1 evicted
    pool.note_serving(c, "m/1", SHA)  # a call loaded it on w2
    assert set(pool.view.holding("m/1")) == {b, c}
    pool.note_gone(b, "m/1")
    assert pool.view.holding("m/1") == [c]
    # The same home for every model on a replica that learnt of the workers in another order.
    other = WorkerPool(StaticDiscovery([e.address for e in (c, b, a)]), 1 << 20, 2.0, 1.0, rng=random.Random(3))
    try:
        for ep in (c, b, a):  # the same heartbeats, read in another order
            other.endpoints[ep.address].apply(ep.state)
        pool.note_gone(c, "m/1")
        for i in range(50):
            mine = [e.address for e in routing.homes(pool.view, f"cold{i}/1", MB)]
            theirs = [e.address for e in routing.homes(other.view, f"cold{i}/1", MB)]
            assert mine == theirs and sorted(mine) == sorted(e.address for e in (a, b, c))
    finally:
        await other.close()
    firsts = Counter(next(routing.homes(other.view, f"cold{i}/1", MB)).address for i in range(300))
    assert min(firsts.values()) > 50  # homes spread over the workers
