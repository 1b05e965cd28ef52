"""The per-model load meter: time-weighted requests inside and arrivals per heartbeat interval."""

from __future__ import annotations

from services.model_worker.busyness import BusyMeter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_mean_requests_inside_weighs_each_by_how_long_it_stayed() -> None:
    clock = Clock()
    meter = BusyMeter(history=3, clock=clock)
    meter.enter()  # one request for the whole interval
    clock.now += 1.0
    meter.enter()  # a second for its last half
    clock.now += 1.0
    meter.leave()
    meter.sample()  # over 2 s: 1 x 2 s + 1 x 1 s = 3 request-seconds
    assert list(meter.history) == [1.5] and meter.rate == 1.0 and meter.inside == 1
    clock.now += 2.0
    meter.sample()  # the one left stayed throughout
    assert list(meter.history) == [1.0, 1.5] and meter.rate == 0.0
    meter.leave()
    for _ in range(3):
        clock.now += 2.0
        meter.sample()
    assert list(meter.history) == [0.0, 0.0, 0.0]  # newest first, bounded


def test_a_burst_between_two_samples_is_seen() -> None:
    clock = Clock()
    meter = BusyMeter(history=10, clock=clock)
    clock.now += 0.5
    for _ in range(8):
        meter.enter()
    clock.now += 0.5
    for _ in range(8):
        meter.leave()
    clock.now += 1.0
    meter.sample()  # 8 requests for 0.5 s of a 2 s interval; an instantaneous count at the sample would be 0
    assert meter.history[0] == 2.0 and meter.rate == 4.0


def test_requests_that_waited_for_the_load_count_at_the_rate_they_arrived() -> None:
    """One request a second arrives from t=100 while the model loads; the load lands at t=104 (the meter is made
    then, 0.5 s before the next heartbeat), and the four that waited enter at once. Counted over the 0.5 s left
    they read as 10 requests a second (4 waited + 1 more, over 0.5 s); counted from their arrival, 1."""
    clock = Clock()
    arrived = [clock.now + i for i in range(4)]
    clock.now += 4.0
    naive, meter = BusyMeter(history=3, clock=clock), BusyMeter(history=3, clock=clock)
    for at in arrived:
        naive.enter()
        meter.enter(arrived=at)
    clock.now += 0.25
    naive.enter()
    meter.enter()  # a request for the loaded model: it arrives as it enters
    clock.now += 0.25
    naive.sample()
    meter.sample()
    assert naive.rate == 10.0
    assert meter.rate == 5 / 4.5  # 5 arrivals since t=100
    assert meter.history[0] == naive.history[0] == (4 * 0.5 + 0.25) / 0.5  # the mean inside: since it was made
    clock.now += 1.0
    meter.enter()
    meter.sample()  # later intervals are whole ones
    assert meter.rate == 1.0
