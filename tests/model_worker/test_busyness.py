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
