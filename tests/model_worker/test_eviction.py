"""The worker's eviction policies (services.model_worker.eviction): GDSF and LRU, driven as a cache would."""

from __future__ import annotations

import pytest

from services.model_worker.eviction import Eviction

MB = 1 << 20


def _cost(size: int) -> float:
    """A load's seconds as the fleet simulator models them: 0.2 s + size / 250 MB/s."""
    return 0.2 + size / (250 * MB)


class Cache:
    """A cache of ``slots`` models that asks ``policy`` for victims, as the model manager does."""

    def __init__(self, policy: Eviction, slots: int) -> None:
        self.policy, self.slots, self.held, self.hits = policy, slots, set(), 0

    def request(self, key: str, size: int = 100 * MB) -> None:
        if key in self.held:
            self.hits += 1
            self.policy.used(key)
            return
        self.held.add(key)
        self.policy.loaded(key, size, _cost(size))
        while len(self.held) > self.slots:
            victim = self.policy.victim(skip=key.__eq__)
            assert victim is not None
            self.policy.evicted(victim)
            self.held.remove(victim)


def _scan(cache: Cache) -> None:
    """Two hot models used again and again, with a scan of one-off models between their uses."""
    for round_ in range(50):
        cache.request("hot-a")
        cache.request("hot-b")
        for i in range(3):
            cache.request(f"once-{round_}-{i}")


def test_a_frequent_model_survives_a_scan_of_one_off_models() -> None:
    gdsf, lru = Cache(Eviction("gdsf"), slots=4), Cache(Eviction("lru"), slots=4)
    _scan(gdsf)
    _scan(lru)
    assert {"hot-a", "hot-b"} <= gdsf.held
    assert gdsf.hits >= 96  # of 98 (each one's uses after its first): at most two misses while the counts build up
    assert lru.hits == 0  # three one-off models between uses push each hot one out of four slots


def test_remembered_uses_bring_an_evicted_frequent_model_back_with_its_count() -> None:
    """Without the history, hot-a comes back with one use each time, no more than the one-off models."""
    forgetful = Cache(Eviction("gdsf", history=0), slots=4)
    _scan(forgetful)
    assert forgetful.hits == 0


def test_lru_evicts_the_least_recently_used() -> None:
    policy = Eviction("lru")
    for key in "abc":
        policy.loaded(key, 10 * MB, 1.0)
    policy.used("a")
    policy.used("a")
    assert policy.victim() == "b"
    assert policy.victim(skip="b".__eq__) == "c"
    policy.evicted("b")
    assert policy.clock == 0.0 and "b" not in policy


def test_size_weighs_in_a_small_model_outlives_a_large_one_used_as_often() -> None:
    policy = Eviction("gdsf")
    policy.loaded("small", 20 * MB, _cost(20 * MB))
    policy.loaded("large", 500 * MB, _cost(500 * MB))  # the more recent
    assert policy.victim() == "large"
    for _ in range(30):  # used far more often, the large one stays
        policy.used("large")
    assert policy.victim() == "small"


def test_popularity_ages_out_through_the_clock() -> None:
    """A model used often long ago gives way once newer models' priorities rise above its own."""
    cache = Cache(Eviction("gdsf"), slots=3)
    for _ in range(20):
        cache.request("old-favourite")
    for round_ in range(200):  # the favourite is never asked for again; two new models are, a few times each
        for i in range(2):
            for _ in range(3):
                cache.request(f"new-{round_}-{i}")
    assert "old-favourite" not in cache.held
    assert cache.policy.clock > 20 * _cost(100 * MB) / (100 * MB)


def test_equal_priorities_fall_back_to_least_recently_used_and_skips_are_honoured() -> None:
    policy = Eviction("gdsf")
    for key in "abc":
        policy.loaded(key, 10 * MB, 0.0)  # no load cost: every priority is the clock
    policy.used("a")
    assert policy.victim() == "b"
    assert policy.victim(skip=lambda key: key != "a") == "a"
    assert policy.victim(skip=lambda key: True) is None
    policy.forget("b")
    policy.used("b")  # unknown keys are ignored
    assert policy.victim() == "c" and len(policy) == 2


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown eviction policy 'lfu'"):
        Eviction("lfu")  # type: ignore[arg-type]


def test_the_worker_setting_picks_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError  # noqa: PLC0415 - only this test needs the settings

    from services.model_worker.settings import WorkerSettings  # noqa: PLC0415

    assert WorkerSettings().eviction == "gdsf"
    monkeypatch.setenv("FLEET_WORKER_EVICTION", "lru")
    assert WorkerSettings().eviction == "lru"
    monkeypatch.setenv("FLEET_WORKER_EVICTION", "lfu")
    with pytest.raises(ValidationError, match="eviction"):
        WorkerSettings()
