"""Relief's cost at fleet scale: a saturated holder costs its own models, not every copy of every one of them."""

from __future__ import annotations

import pytest

from services.gateway import placement
from services.gateway.placement import CopyPolicy, Target, plan
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.view import FleetView
from tests.gateway.test_workers import SHA, load, state

POLICY = CopyPolicy(max_copies=0, up_load=4.0, up_window_s=3.0, release_load=0.5, release_window_s=6.0)
MODELS = [f"m{i}/1" for i in range(8)]


def address(i: int) -> str:
    return f"10.0.{i // 256}.{i % 256}:50053"


def fleet(holders: int, workers: int) -> FleetView:
    """``holders`` workers each holding all of MODELS at 1 request inside each, for the whole window (8 in all:
    saturated, while no model alone is hot), the others idle with room; windows as the copies controller sets."""
    view = FleetView()
    view.windows = (POLICY.up_window_s, POLICY.release_window_s)
    for i in range(workers):
        endpoint = view.add(WorkerEndpoint(address(i)))
        models = [load(m, rate=20, history=[1.0] * 4) for m in MODELS] if i < holders else []
        endpoint.apply(state(f"w{i}", address(i), *models))
    return view


def walked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The copies ``placement.copies_of`` returns, call by call."""
    counts: list[int] = []
    real = placement.copies_of

    def counting(view: FleetView, target: Target) -> list:
        copies = real(view, target)
        counts.append(len(copies))
        return copies

    monkeypatch.setattr(placement, "copies_of", counting)
    return counts


def decided(view: FleetView) -> list[tuple[str, str, str]]:
    return [(a.kind, a.model_id, a.reason) for a in plan(view, {m: Target(m, SHA, "demo") for m in MODELS}, POLICY)]


def test_relief_walks_one_models_copies_once_however_many_holders_shed_it(monkeypatch: pytest.MonkeyPatch) -> None:
    view = fleet(holders=40, workers=60)
    counts = walked(monkeypatch)
    # Every holder sheds its busiest model (ties: the last id), once; its other models' copies are not walked.
    assert decided(view) == [("add", "m7/1", "saturated")]
    # The plan's own look at each shared model walks its 40 copies once (8 x 40); relief adds one walk of m7/1's.
    # Walking every held model's copies for every saturated holder was 40 x 8 x 40 more.
    assert sum(counts) <= len(MODELS) * 40 + 40


def test_a_new_copy_elsewhere_still_holds_relief_back_and_one_on_a_failed_worker_does_not() -> None:
    view = fleet(holders=40, workers=60)
    new = view.endpoints[address(50)]
    new.apply(state("w50", address(50), load("m3/1", rate=5, history=[1.0]), sequence=2))  # just placed
    assert view.fresh_copies("m3/1", POLICY.up_window_s) == 1
    assert decided(view) == []  # wait to see the new copy's effect
    new.failed = True  # out of rotation: not a copy (the view's count is only a bound: the copies decide)
    assert decided(view) == [("add", "m7/1", "saturated")]
    new.failed = False
    new.apply(state("w50", address(50), load("m3/1", rate=5, history=[1.0] * 4), sequence=3))  # measured now
    assert view.fresh_copies("m3/1", POLICY.up_window_s) == 0
    assert decided(view) == [("add", "m7/1", "saturated")]


def test_the_views_count_of_new_copies_follows_heartbeats_and_membership() -> None:
    view = FleetView()
    a = view.add(WorkerEndpoint("a"))
    b = view.add(WorkerEndpoint("b"))
    a.apply(state("a", "a", load("m/1", history=[1.0])))
    assert view.fresh_copies("m/1", 3.0) is None  # no windows: the view does not count
    view.windows = (3.0, 6.0)  # counted from the heartbeats already held
    assert view.fresh_copies("m/1", 3.0) == 1 and view.fresh_copies("m/1", 6.0) is None
    b.apply(state("b", "b", load("m/1", history=[1.0, 1.0]), interval=2.0))  # 4 s measured: covers 3 s
    assert view.fresh_copies("m/1", 3.0) == 1
    b.apply(state("b", "b", load("m/1", history=[1.0], interval=2.0), sequence=2, interval=2.0))  # 2 s + 1: covers
    assert view.fresh_copies("m/1", 3.0) == 1
    b.apply(state("b", "b", load("m/1", history=[1.0]), sequence=3, interval=1.0))  # 1 s + 0.5: new
    assert view.fresh_copies("m/1", 3.0) == 2
    a.forget_state()
    assert view.fresh_copies("m/1", 3.0) == 1
    view.remove("b")
    assert view.fresh_copies("m/1", 3.0) == 0
    view.add(b)  # back with its last heartbeat
    assert view.fresh_copies("m/1", 3.0) == 1
    assert b.measured_seconds == 1.0
    b.apply(state("b", "b", load("m/1", history=[1.0] * 5), load("n/1", history=[1.0] * 2), sequence=4))
    assert b.measured_seconds == 5.0 and view.fresh_copies("m/1", 3.0) == 0


def test_a_new_copy_elsewhere_is_found_by_one_walk_of_its_models_copies_not_one_per_saturated_holder(
        monkeypatch: pytest.MonkeyPatch) -> None:
    view = fleet(holders=40, workers=60)
    new = view.endpoints[address(50)]
    new.apply(state("w50", address(50), load("m3/1", rate=5, history=[1.0]), sequence=2))  # just placed
    counts = walked(monkeypatch)
    assert decided(view) == []  # every holder waits to see the new copy's effect
    # The plan's own look at each shared model walks its copies once (8 x 40, and m3/1's 41); relief walks m3/1's
    # 41 once more. Walking them for each of the 40 holders that reach m3/1 was 40 x 41 more.
    assert sum(counts) <= len(MODELS) * 40 + 1 + 41


def test_relief_stops_at_its_share_of_the_steps_time_and_the_next_step_goes_on_from_there() -> None:
    view = fleet(holders=40, workers=60)
    ticks = iter(range(1_000_000))
    backlog = placement.Backlog(seconds=10.0, clock=lambda: float(next(ticks)))  # one second a look at the clock
    targets = {m: Target(m, SHA, "demo") for m in MODELS}
    # A look when it starts (``plan`` passes its own), then one before each holder after the first: past 5 s (half
    # the step) at the 7th.
    assert placement._relief(view, targets, POLICY, backlog) == {"m7/1"}
    assert backlog.relief_turn == 6
    placement._relief(view, targets, POLICY, backlog)
    assert backlog.relief_turn == 12  # the next six holders
    unhurried = placement.Backlog(seconds=10.0, clock=lambda: 0.0)
    assert placement._relief(view, targets, POLICY, unhurried) == {"m7/1"} and unhurried.relief_turn == 40
