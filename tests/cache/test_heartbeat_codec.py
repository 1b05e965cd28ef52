"""Compact heartbeats: only what changed travels; readers rebuild the same full state, or read the full record."""

from __future__ import annotations

import random

import pytest
import redis

from fleet.internal.v1.worker_pb2 import ModelLoad, WorkerState
from services.cache import FleetCache
from services.cache.heartbeat_codec import CompactEncoder, StaleBase, apply


def _load(model_id: str, idle: float, seq: int, rate: float = 0.0) -> ModelLoad:
    return ModelLoad(model_id=model_id, sha256="ab" * 32, workspace="demo", size_bytes=250_000_000,
                     requests_per_second=rate, outstanding=rate / 10, outstanding_high=rate / 5,
                     measured_seconds=2.0 * seq, idle_seconds=idle)


def _state(seq: int, models: list[ModelLoad], boot: str = "b" * 32) -> WorkerState:
    return WorkerState(worker_id="w1", address="10.0.0.1:50053", boot_id=boot, sequence=seq, interval_seconds=2.0,
                       max_models=64, models=models)


def test_a_beat_with_unchanged_models_carries_no_model_list() -> None:
    encoder = CompactEncoder()
    names = [f"m{i}/1" for i in range(64)]
    first_full, first = encoder.encode(_state(1, [_load(m, 100.0 - i, 1) for i, m in enumerate(names)]))
    assert first == first_full and len(first.models) == 64  # nothing to refer to yet: the whole list
    full, compact = encoder.encode(_state(2, [_load(m, 102.0 - i, 2) for i, m in enumerate(names)]))
    assert compact.models_from == 1
    assert not compact.models and not compact.models_added and not compact.models_changed
    assert not compact.models_removed and not compact.models_order
    assert compact.ByteSize() < 120 < 64 * 90 < full.ByteSize()
    rebuilt = apply(first_full, compact)
    assert rebuilt == full and [m.model_id for m in rebuilt.models] == names  # the reader keeps the last list
    assert rebuilt.models[0].idle_seconds == 102.0 and rebuilt.models[0].measured_seconds == 4.0


def test_only_changed_models_travel_and_the_reader_rebuilds_the_worker_state() -> None:
    rng = random.Random(3)
    encoder = CompactEncoder()
    idle = {f"m{i}/1": 50.0 + i for i in range(40)}
    reader = None
    for seq in range(1, 60):
        for m in idle:
            idle[m] += 2.0
        used = rng.sample(sorted(idle), 5)
        for m in used:
            idle[m] = rng.random()
        if seq % 7 == 0:  # an eviction and a load
            del idle[min(idle, key=lambda m: -idle[m])]
            idle[f"n{seq}/1"] = 0.3
        order = sorted(idle, key=lambda m: -idle[m])
        if seq % 11 == 0:
            order[-1], order[-2] = order[-2], order[-1]  # an order idle times do not give
        state = _state(seq, [_load(m, idle[m], seq, 3.0 if m in used else 0.0) for m in order])
        full, compact = encoder.encode(state)
        reader = apply(reader, compact)
        assert reader == full and [m.model_id for m in reader.models] == order
        if seq > 1:
            assert len(compact.models_changed) <= 5 + 5  # used now, or used before and quiet now
            assert compact.ByteSize() < full.ByteSize() / 4
    last = reader.models[-1]
    assert abs(last.idle_seconds - idle[last.model_id]) <= 0.5  # times within the tolerance


def test_a_reader_that_missed_a_beat_or_a_restart_needs_the_full_record() -> None:
    encoder = CompactEncoder()
    one, _ = encoder.encode(_state(1, [_load("m/1", 5.0, 1)]))
    encoder.encode(_state(2, [_load("m/1", 7.0, 2)]))
    _, third = encoder.encode(_state(3, [_load("m/1", 9.0, 3)]))
    with pytest.raises(StaleBase):
        apply(one, third)  # it refers to beat 2
    restarted_full, restarted = encoder.encode(_state(1, [_load("n/1", 0.0, 1)], boot="c" * 32))
    assert restarted == restarted_full and not restarted.models_from  # a new boot: the whole list again
    with pytest.raises(StaleBase):
        apply(None, third)


async def test_gateways_read_compact_records_and_fall_back_to_full_ones(cache: FleetCache, redis_url: str,
                                                                       namespace: str) -> None:
    writer = FleetCache(cache.client, namespace)  # the worker's side: its own encoder state
    names = [f"m{i}/1" for i in range(32)]
    await writer.heartbeats.beat(_state(1, [_load(m, 40.0 - i, 1) for i, m in enumerate(names)]), ttl_s=30)
    first = (await cache.heartbeats.live())["w1"]
    full_bytes = cache.heartbeats.bytes_read
    assert len(first.models) == 32 and full_bytes > 32 * 90  # the first read: the full record
    second = _state(2, [_load(m, 42.0 - i, 2, rate=2.0 if i == 31 else 0.0) for i, m in enumerate(names)])
    await writer.heartbeats.beat(second, ttl_s=30)
    live = (await cache.heartbeats.live())["w1"]
    assert cache.heartbeats.bytes_read - full_bytes < 200  # one model changed: a compact record
    assert [m.model_id for m in live.models] == names and live.models[-1].requests_per_second == 2.0
    # A worker of an older release publishes the full record only: read it.
    raw = redis.Redis.from_url(redis_url)
    raw.delete(f"{namespace}:worker-compact:w1")
    await writer.heartbeats.beat(_state(3, [_load("x/1", 1.0, 3)]), ttl_s=30)
    raw.delete(f"{namespace}:worker-compact:w1")
    assert [m.model_id for m in (await cache.heartbeats.live())["w1"].models] == ["x/1"]
    # A beat the reader missed: the compact record refers to one it never read, so it reads the full one.
    await writer.heartbeats.beat(_state(4, [_load("x/1", 3.0, 4), _load("y/1", 0.0, 4)]), ttl_s=30)
    await writer.heartbeats.beat(_state(5, [_load("x/1", 5.0, 5), _load("y/1", 2.0, 5)]), ttl_s=30)
    assert [m.model_id for m in (await cache.heartbeats.live())["w1"].models] == ["x/1", "y/1"]
    await writer.heartbeats.leave("w1")
    assert await cache.heartbeats.live() == {}
    assert not raw.exists(f"{namespace}:worker-compact:w1")
