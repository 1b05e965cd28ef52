"""Copies of hot models: pure decisions from heartbeats, the same on every gateway replica."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from services.gateway.copy_demand import is_cold, is_hot
from services.gateway.placement import CopyPolicy, Target, plan
from services.gateway.routing import rendezvous
from services.gateway.discovery import StaticDiscovery
from services.gateway.workers import WorkerPool
from tests.gateway.test_workers import SHA, load, state

POLICY = CopyPolicy(max_copies=3, up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0,
                    rate_up=0.0)  # (the rate rule: its own test; these figures are about requests inside)
HOT = Target("hot/1", SHA, "demo")


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    p = WorkerPool(StaticDiscovery([f"127.0.0.1:{i}" for i in range(1, 5)]), 1 << 20, 2.0, 1.0, rng=random.Random(1))
    yield p
    await p.close()


def beat(pool: WorkerPool, index: int, *models, **kw) -> None:  # noqa: ANN002, ANN003
    address = f"127.0.0.1:{index}"
    kw.setdefault("sequence", 1)
    pool.endpoints[address].apply(state(f"w{index}", address, *models, **kw))


def decided(pool: WorkerPool, targets: list[Target], policy: CopyPolicy = POLICY) -> list[tuple[str, str, str, str]]:
    return [(a.kind, a.model_id, a.endpoint.label, a.reason) for a in plan(pool.view, targets, policy)]


async def test_a_model_busy_for_the_whole_window_gets_one_more_copy_on_the_best_worker(pool: WorkerPool) -> None:
    beat(pool, 1, load("hot/1", rate=40, history=[9.0, 8.0, 7.5, 1.0]))
    beat(pool, 2, load("other/1", rate=1, history=[3.0]))  # room, but busy with another model
    beat(pool, 3)  # room, idle
    beat(pool, 4, *(load(f"x{i}/1") for i in range(8)))  # full
    assert decided(pool, [HOT]) == [("add", "hot/1", "w3", "hot")]
    beat(pool, 1, load("hot/1", rate=40, history=[7.0, 3.0, 7.0]), sequence=2)  # one quiet interval in the window
    assert decided(pool, [HOT]) == []
    beat(pool, 1, load("hot/1", rate=40, history=[7.0, 7.0]), sequence=3)  # window not complete yet
    assert decided(pool, [HOT]) == []
    # Plainly over capacity (more than twice the threshold in the last interval): no window to wait for, and as
    # many copies as the load needs at once (ceil(17 / 4) = 5, two workers can take one).
    beat(pool, 1, load("hot/1", rate=40, history=[17.0]), sequence=4)
    assert decided(pool, [HOT]) == [("add", "hot/1", "w3", "hot"), ("add", "hot/1", "w2", "hot")]
    assert decided(pool, [HOT], CopyPolicy(max_copies=2)) == [("add", "hot/1", "w3", "hot")]
    assert [a.endpoint.label for a in plan(pool.view, [HOT], POLICY, {"hot/1": 4})] == []  # four loading already


async def test_every_replica_decides_the_same_from_the_same_heartbeats(pool: WorkerPool) -> None:
    other = WorkerPool(StaticDiscovery([f"127.0.0.1:{i}" for i in (4, 2, 3, 1)]), 1 << 20, 2.0, 1.0,
                       rng=random.Random(2))
    try:
        for p in (pool, other):
            beat(p, 1, load("hot/1", rate=40, history=[9.0] * 5), load("cold/1", history=[0.0] * 9))
            beat(p, 2, load("cold/1", history=[0.1] * 9))
            beat(p, 3, load("cold/1", history=[0.0] * 9))
            beat(p, 4)
        targets = [HOT, Target("cold/1", SHA, "demo")]
        mine, theirs = decided(pool, targets), decided(other, targets)
        assert mine == theirs
        *adds, release = sorted(mine)
        # 9 inside throughout the window: ceil(9 / 4) = 3 copies, the idle worker (most free slots) first
        assert len(adds) == 2 and ("add", "hot/1", "w4", "hot") in adds
        assert release[:2] == ("release", "cold/1") and release[2] in {"w1", "w2", "w3"} and release[3] == "cold"
    finally:
        await other.close()


async def test_new_copies_never_evict_a_hotter_model_nor_a_pinned_or_kept_one(pool: WorkerPool) -> None:
    hot = load("hot/1", rate=20, history=[9.0] * 4)
    beat(pool, 1, hot)
    beat(pool, 2, load("hotter/1", rate=50), max_models=1)
    beat(pool, 3, load("pinned/1", pinned=True), max_models=1)
    beat(pool, 4, load("kept/1", rate=0.1), max_models=1)
    kept = Target("kept/1", SHA, "demo", floor=1)
    assert decided(pool, [HOT, kept]) == []  # no worker may take it
    beat(pool, 4, load("kept/1", rate=0.1), load("colder/1", rate=1.0), max_models=2)  # LRU would evict kept/1
    assert decided(pool, [HOT, kept]) == []
    beat(pool, 2, load("cooler/1", rate=5), max_models=1)  # colder than hot/1's 20 req/s per copy
    assert decided(pool, [HOT, kept]) == [("add", "hot/1", "w2", "hot")]


async def test_copies_stop_at_the_maximum_and_surplus_ones_are_released(pool: WorkerPool) -> None:
    for i in (1, 2, 3):
        beat(pool, i, load("hot/1", rate=40, history=[9.0] * 9))
    beat(pool, 4)
    assert decided(pool, [HOT]) == []  # three copies: the maximum
    [(kind, model_id, victim, reason)] = decided(pool, [HOT], CopyPolicy(max_copies=2))
    assert (kind, model_id, reason) == ("release", "hot/1", "surplus")
    holders = [pool.endpoints[f"127.0.0.1:{i}"] for i in (1, 2, 3)]
    assert victim == max(holders, key=lambda e: rendezvous("hot/1", e)).label


async def test_a_cold_model_keeps_one_copy_or_its_floor_and_releases_the_same_copy_everywhere(
        pool: WorkerPool) -> None:
    for i in (1, 2, 3):
        beat(pool, i, load("m/1", history=[0.2] * 6))
    target = Target("m/1", SHA, "demo")
    first = decided(pool, [target])
    assert len(first) == 1 and first[0][0] == "release" and first[0][3] == "cold"
    victim = first[0][2]
    for _ in range(5):
        assert decided(pool, [target])[0][2] == victim  # not load- or order-dependent
    assert decided(pool, [Target("m/1", SHA, "demo", floor=3)]) == []  # AddModel asked for three
    beat(pool, 1, load("m/1", history=[0.2] * 3), sequence=2)  # a copy without a full release window yet
    assert decided(pool, [target]) == []
    for i in (2, 3):
        beat(pool, i, sequence=2)  # one copy left
    beat(pool, 1, load("m/1", history=[0.0] * 9), sequence=3)
    assert decided(pool, [target]) == []


async def test_the_newest_copy_is_released_first_so_a_stand_in_goes_and_the_older_copies_stay(
        pool: WorkerPool) -> None:
    """Two copies kept by a floor; one holder's heartbeat was late, so a third was placed to stand in for it: once
    the late one is back, the stand-in (measured for one release window, the others for many) is released,
    wherever the rendezvous hash would have put it, and the copies AddModel reported stay where they were."""
    target = Target("m/1", SHA, "demo", floor=2)
    by_hash = sorted((1, 2, 3), key=lambda i: rendezvous("m/1", pool.endpoints[f"127.0.0.1:{i}"]))
    stand_in, *older = by_hash[0], *by_hash[1:]  # the first by hash: the last one a rendezvous pick would release
    for i in older:
        beat(pool, i, load("m/1", history=[0.0] * 30))
    beat(pool, stand_in, load("m/1", history=[0.0] * 7))
    assert decided(pool, [target]) == [("release", "m/1", f"w{stand_in}", "cold")]
    for i in (1, 2, 3):  # all as old (in whole windows): the rendezvous hash decides, the same everywhere
        beat(pool, i, load("m/1", history=[0.0] * 30), sequence=2)
    assert decided(pool, [target]) == [("release", "m/1", f"w{by_hash[-1]}", "cold")]


async def test_a_floor_places_missing_copies_on_workers_with_room(pool: WorkerPool) -> None:
    beat(pool, 1, load("m/1"))
    beat(pool, 2, load("busy/1", rate=3.0), max_models=1)
    beat(pool, 3)
    beat(pool, 4, draining=True)
    assert decided(pool, [Target("m/1", SHA, "demo", floor=2)]) == [("add", "m/1", "w3", "floor")]
    assert decided(pool, [Target("m/1", SHA, "demo", floor=9)]) == [("add", "m/1", "w3", "floor")]  # capped at max


def test_hot_and_cold_thresholds_use_each_copys_whole_window() -> None:
    class Ep:  # the part of an endpoint the window needs
        def __init__(self, interval: float) -> None:
            self.state = state("w", "a", interval=interval)

    busy = [(Ep(1.0), load("m/1", history=[5.0, 5.0, 5.0])), (Ep(1.0), load("m/1", history=[4.5, 9.0, 6.0]))]
    assert is_hot(busy, POLICY)  # quietest intervals 5 and 4.5: 4.75 per copy > 4
    assert not is_hot(busy, CopyPolicy(up_load=5.0, up_window_s=3.0))
    slow = [(Ep(2.0), load("m/1", history=[9.0, 9.0]))]  # 2 s intervals: two samples cover 3 s
    assert is_hot(slow, POLICY)
    idle = [(Ep(1.0), load("m/1", history=[0.1] * 6)), (Ep(1.0), load("m/1", history=[0.3] * 6))]
    assert is_cold(idle, POLICY)  # busiest 0.1 + 0.3 on one copy: 0.4 < 0.5
    assert not is_cold(idle, CopyPolicy(release_load=0.4, release_window_s=6.0))
    assert not is_cold(idle[:1], POLICY)  # one copy is never released as cold


SLOW, FAST = Target("slow/1", SHA, "demo"), Target("fast/1", SHA, "demo")


async def test_a_holder_saturated_by_several_models_sheds_its_busiest_to_an_idle_worker(pool: WorkerPool) -> None:
    # Neither model alone is above the threshold (4 per copy); together they keep w1 at 6.5 the whole window.
    beat(pool, 1, load("slow/1", rate=10, history=[3.5] * 4), load("fast/1", rate=40, history=[3.0] * 4))
    beat(pool, 2, load("other/1", rate=1, history=[4.5] * 4))  # room, but busy itself
    beat(pool, 3)  # room, idle
    beat(pool, 4, *(load(f"x{i}/1") for i in range(8)))  # full
    assert decided(pool, [SLOW, FAST]) == [("add", "slow/1", "w3", "saturated")]
    assert decided(pool, [FAST, SLOW]) == decided(pool, [SLOW, FAST])  # no order dependence
    # The copy is placed: while it has no full window, the holder waits to see its effect.
    beat(pool, 3, load("slow/1", rate=5, history=[1.5]), sequence=2)
    beat(pool, 1, load("slow/1", rate=5, history=[1.5, 3.5, 3.5]), load("fast/1", rate=40, history=[3.0] * 4),
         sequence=2)
    assert decided(pool, [SLOW, FAST]) == []
    # Still saturated by the fast model once it shows: slow/1 has a holder with room (w3), so fast/1 is copied,
    # and not to w2, busy with its own model.
    beat(pool, 3, load("slow/1", rate=5, history=[1.5] * 3), sequence=3)
    beat(pool, 1, load("slow/1", rate=5, history=[1.5] * 3), load("fast/1", rate=40, history=[3.0] * 4),
         sequence=3)
    assert decided(pool, [SLOW, FAST]) == [("add", "fast/1", "w3", "saturated")]


async def test_no_copy_for_a_saturated_holder_when_no_worker_has_room_or_load_is_below_the_threshold(
        pool: WorkerPool) -> None:
    beat(pool, 1, load("slow/1", rate=10, history=[2.5] * 4), load("fast/1", rate=40, history=[1.0] * 4))
    for i in (2, 3, 4):
        beat(pool, i)
    assert decided(pool, [SLOW, FAST]) == []  # 3.5 in all: not saturated
    beat(pool, 1, load("slow/1", rate=10, history=[2.5] * 4), load("fast/1", rate=40, history=[2.0, 2.0, 1.0, 2.0]),
         sequence=2)
    assert decided(pool, [SLOW, FAST]) == []  # its quietest interval was 3.5
    beat(pool, 1, load("slow/1", rate=10, history=[2.5] * 4), load("fast/1", rate=40, history=[2.0] * 4),
         sequence=3)
    [(kind, model_id, where, reason)] = decided(pool, [SLOW, FAST])  # now 4.5: the busier model goes
    assert (kind, model_id, reason) == ("add", "slow/1", "saturated") and where in {"w2", "w3", "w4"}
    for i in (2, 3, 4):
        beat(pool, i, load(f"own{i}/1", history=[5.0] * 4), sequence=2)  # every other worker busy too
    assert decided(pool, [SLOW, FAST]) == []
    for i in (2, 3, 4):
        beat(pool, i, load(f"own{i}/1", history=[5.0, 0.5, 0.5, 0.5]), sequence=3)  # busy lately
    assert decided(pool, [SLOW, FAST]) == []
    for i in (2, 3, 4):
        beat(pool, i, load(f"own{i}/1", history=[0.5, 3.0, 0.5, 5.0]), sequence=4)  # below 4 throughout the window
    assert [a[3] for a in decided(pool, [SLOW, FAST])] == ["saturated"]
    beat(pool, 1, load("idle/1", history=[0.1] * 4), load("busy/1", rate=40, history=[4.5] * 4), sequence=4)
    for i in (2, 3, 4):
        beat(pool, i, sequence=5)
    # busy/1 alone is hot (the per-model rule): one action, for it.
    [(kind, model_id, _, reason)] = decided(pool, [Target("idle/1", SHA, "demo"), Target("busy/1", SHA, "demo")])
    assert (kind, model_id, reason) == ("add", "busy/1", "hot")


async def test_a_lighter_model_is_not_copied_while_the_busiest_one_moves_to_its_other_copy(pool: WorkerPool) -> None:
    big, small = Target("big/1", SHA, "demo"), Target("small/1", SHA, "demo")
    beat(pool, 1, load("big/1", rate=60, history=[6.0] * 4), load("small/1", rate=5, history=[1.0] * 4))
    beat(pool, 2, load("big/1", rate=10, history=[1.0] * 4))  # big/1's other copy has room: routing fills it
    beat(pool, 3)
    beat(pool, 4)
    assert decided(pool, [big, small]) == []  # not small/1 to an idle worker: it would relieve w1 of 1 in 7
    beat(pool, 2, load("big/1", rate=60, history=[5.0] * 4), sequence=2)  # both holders saturated now
    [(kind, model_id, _, reason)] = decided(pool, [big, small])
    assert (kind, model_id) == ("add", "big/1") and reason in {"hot", "saturated"}


async def test_relief_is_not_held_back_by_a_model_just_loaded_on_the_saturated_holder(pool: WorkerPool) -> None:
    # w1 is saturated by slow/1 and fast/1 together; its last slot turns over (new/1 loaded a moment ago, held
    # nowhere else): that moves no load off w1, so it must not make relief wait (on a worker whose other slots
    # turn over every few seconds, it would wait for ever).
    beat(pool, 1, load("slow/1", rate=10, history=[3.5] * 4), load("fast/1", rate=40, history=[3.0] * 4),
         load("new/1", rate=1, history=[0.2]))
    beat(pool, 2, load("other/1", rate=1, history=[4.5] * 4))
    beat(pool, 3)
    beat(pool, 4, *(load(f"x{i}/1") for i in range(8)))
    targets = [SLOW, FAST, Target("new/1", SHA, "demo")]
    assert decided(pool, targets) == [("add", "slow/1", "w3", "saturated")]
    # A copy of one of its models placed elsewhere a moment ago still makes it wait to see the effect.
    beat(pool, 3, load("fast/1", rate=5, history=[1.0]), sequence=2)
    assert decided(pool, targets) == []


async def test_a_model_waiting_behind_another_on_a_saturated_worker_is_not_copied_for_its_queue() -> None:
    pool = WorkerPool(StaticDiscovery([f"127.0.0.1:{i}" for i in range(1, 7)]), 1 << 20, 2.0, 1.0,
                      rng=random.Random(1))
    try:
        # w1 runs one request at a time: main/1 makes most of its load; minor/1's requests wait behind main/1's,
        # so 4.5 of them are inside on average although it asks for a fifth of what main/1 does.
        beat(pool, 1, load("main/1", rate=40, history=[20.0] * 4), load("minor/1", rate=8, history=[4.5] * 4))
        for i in range(2, 7):
            beat(pool, i)
        main, minor = Target("main/1", SHA, "demo"), Target("minor/1", SHA, "demo")
        actions = decided(pool, [main, minor], CopyPolicy(max_copies=3, up_load=4.0, up_window_s=3.0))
        assert [a[1] for a in actions] and {a[1] for a in actions} == {"main/1"}
        assert all(a[3] == "hot" for a in actions)
        # Alone on its worker, the same figure is its own demand: copied.
        beat(pool, 2, load("minor/1", rate=8, history=[4.5] * 4), sequence=2)
        beat(pool, 1, load("main/1", rate=40, history=[20.0] * 4), sequence=2)
        actions = decided(pool, [main, minor], CopyPolicy(max_copies=3, up_load=4.0, up_window_s=3.0))
        assert "minor/1" in {a[1] for a in actions}
    finally:
        await pool.close()


async def test_a_lone_holder_taking_far_more_than_the_mean_workers_requests_gets_copies_by_rate(
        pool: WorkerPool) -> None:
    # hot/1 takes 18 requests a second on w1, the fleet's mean worker 5 (20 / 4): more than 1.4 x the mean, while
    # its requests inside (2, the quietest interval: often between queues) are under every up_load rule.
    beat(pool, 1, load("hot/1", rate=18, history=[2.0] * 4))
    beat(pool, 2, load("x/1", rate=2, history=[0.1] * 4))
    beat(pool, 3)
    beat(pool, 4)
    by_rate = CopyPolicy(up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0)
    adds = decided(pool, [HOT], by_rate)
    # ceil(18 / (1.0 x 5)) = 4 copies: three more, one per worker
    assert sorted(adds) == [("add", "hot/1", w, "hot") for w in ("w2", "w3", "w4")]
    assert decided(pool, [HOT], by_rate.__class__(**{**by_rate.__dict__, "rate_to": 2.0})) == [
        ("add", "hot/1", adds[0][2], "hot")]  # ceil(18 / 10) = 2: one more
    assert [a.endpoint.label for a in plan(pool.view, [HOT], by_rate, {"hot/1": 3})] == []  # three loading already
    assert decided(pool, [HOT]) == []  # the rule off (rate_up 0): requests inside alone decide, and 2 < 4
    beat(pool, 1, load("hot/1", rate=18, history=[2.0] * 2), sequence=2)  # not measured over the load window
    assert decided(pool, [HOT], by_rate) == []
    beat(pool, 1, load("hot/1", rate=6, history=[2.0] * 4), sequence=3)
    beat(pool, 2, load("x/1", rate=14, history=[0.1] * 4), sequence=2)
    assert decided(pool, [HOT], by_rate) == []  # 6 a second: within 1.4 x the mean worker's (20 / 4)


async def test_a_new_copy_goes_to_a_worker_whose_load_queue_is_short(pool: WorkerPool) -> None:
    beat(pool, 1, load("hot/1", rate=40, history=[9.0] * 5))
    beat(pool, 2, *(load(f"x{i}/1", pinned=True) for i in range(8)))  # full
    beat(pool, 3)  # idle and empty: the best place, but behind five loads it would land long after it is wanted
    queued = state("w3", "127.0.0.1:3", sequence=2)
    queued.loads_in_progress = 5
    pool.endpoints["127.0.0.1:3"].apply(queued)
    beat(pool, 4, load("y/1", history=[0.5] * 5))  # a slot free, two loads under way
    short = state("w4", "127.0.0.1:4", load("y/1", history=[0.5] * 5), sequence=2)
    short.loads_in_progress = 2
    pool.endpoints["127.0.0.1:4"].apply(short)
    assert decided(pool, [HOT]) == [("add", "hot/1", "w4", "hot")]  # ceil(9 / 4) = 3 wanted; one place fits
    short.loads_in_progress, short.sequence = 3, 3
    pool.endpoints["127.0.0.1:4"].apply(short)
    assert decided(pool, [HOT]) == []  # nowhere: the model waits for a worker with a short queue


async def test_the_rate_rule_adds_no_copy_that_the_release_rule_would_take_back(pool: WorkerPool) -> None:
    # A quiet fleet: hot/1 takes 4 of its 5 requests a second, yet is seldom busy (0.2 inside at its busiest
    # interval). By rate alone it wants ceil(4 / 1.25) = 4 copies; the release rule would take each back (a load
    # under 0.5 a copy), and the next step add them again.
    beat(pool, 1, load("hot/1", rate=4, history=[0.2] * 6))
    beat(pool, 2, load("x/1", rate=1, history=[0.05] * 6))
    beat(pool, 3)
    beat(pool, 4)
    by_rate = CopyPolicy(up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0)
    assert decided(pool, [HOT], by_rate) == []
    # Busier (1.2 inside at its busiest): 1 + int(1.2 / 0.5) = 3 copies keep over 0.5 each: two more, not three.
    beat(pool, 1, load("hot/1", rate=4, history=[1.2] * 6), sequence=2)
    assert len(decided(pool, [HOT], by_rate)) == 2


async def test_the_rate_rule_copies_no_model_whose_requests_never_overlap(pool: WorkerPool) -> None:
    # One caller of a fast model: 200 requests a second, one at a time (never more than one inside), beside a
    # quicker model spread over the fleet. Far over 1.4 x the mean worker's rate (weighed by cost too), yet a copy
    # would serve none of its requests sooner; with a second caller its requests overlap and it is copied by rate.
    beat(pool, 1, load("hot/1", rate=200, history=[0.95] * 6), load("x/1", rate=30, history=[0.5] * 6))
    beat(pool, 2, load("x/1", rate=30, history=[0.5] * 6))
    beat(pool, 3, load("x/1", rate=30, history=[0.5] * 6))
    beat(pool, 4)
    by_rate = CopyPolicy(up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0)
    assert decided(pool, [HOT], by_rate) == []
    beat(pool, 1, load("hot/1", rate=300, history=[1.9] * 6), load("x/1", rate=30, history=[0.5] * 6), sequence=2)
    # By cost w1's 330 a second times hot/1's share of its 2.4 inside: 261, ceil(261 / 97.5) = 3 copies, two more
    assert [a[:2] for a in decided(pool, [HOT], by_rate)] == [("add", "hot/1")] * 2


async def test_the_rate_rule_weighs_requests_by_the_time_they_take(pool: WorkerPool) -> None:
    # w1 serves a slow segmenter (8 requests a second, 3.9 inside) and a fast classifier (150 a second, 1.6
    # inside), four callers each, and is not saturated yet (its load began within the window). By count the
    # classifier is nearly four times the mean worker's rate (158 / 4): copied, it would leave w1 to the
    # segmenter's queue. Weighed by cost (w1's 158 a second by each model's share of its 5.5 inside) the classifier
    # takes 46 (under 1.4 x 39.5), the segmenter 112: the segmenter gets ceil(112 / 39.5) = 3 copies, two more.
    beat(pool, 1, load("slow/1", rate=8, history=[3.9, 3.9, 0.0, 0.0]),
         load("fast/1", rate=150, history=[1.6, 1.6, 0.0, 0.0]))
    beat(pool, 2)
    beat(pool, 3)
    beat(pool, 4)
    by_rate = CopyPolicy(up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0)
    assert [(kind, model, reason) for kind, model, _, reason in decided(pool, [SLOW, FAST], by_rate)] == [
        ("add", "slow/1", "hot")] * 2
    # Were the classifier the heavier (3.0 inside of 4.5), it would be the one copied: 105 a second by cost.
    beat(pool, 1, load("slow/1", rate=8, history=[1.5, 1.5, 0.0, 0.0]),
         load("fast/1", rate=150, history=[3.0, 3.0, 0.0, 0.0]), sequence=2)
    assert [a[:2] for a in decided(pool, [SLOW, FAST], by_rate)] == [("add", "fast/1")] * 2


async def test_a_saturated_holder_sheds_its_heaviest_model_not_the_one_with_most_requests(pool: WorkerPool) -> None:
    # w1 is saturated (5 requests inside throughout the window) by a slow model (10 requests a second, 3.5 inside)
    # and a fast one (60 a second, 1.5 inside: cheap requests, many of them). By rate the fast one would get three
    # copies and leave w1 to the slow one's queue; the saturated-holder rule copies the slow one, its heaviest.
    beat(pool, 1, load("slow/1", rate=10, history=[3.5] * 4), load("fast/1", rate=60, history=[1.5] * 4))
    beat(pool, 2)
    beat(pool, 3)
    beat(pool, 4)
    by_rate = CopyPolicy(up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0)
    decisions = decided(pool, [SLOW, FAST], by_rate)
    assert [(kind, model, reason) for kind, model, _, reason in decisions] == [("add", "slow/1", "saturated")]
