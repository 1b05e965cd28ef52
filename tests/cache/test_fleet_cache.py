"""The Redis layer against a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from fleet.internal.v1.worker_pb2 import ModelLoad, WorkerState
from services.cache import FleetCache
from fleet.keys import hash_api_key
from services.cache.copies import CopyFloor
from services.cache.embedded import EmbeddedRedis
from services.cache.registry_records import Invalidation, PrincipalRecord
from services.common.errors import CacheUnavailable


async def test_principals_are_cached_only_by_hash_with_a_ttl(cache: FleetCache, redis_url: str,
                                                              namespace: str) -> None:
    key = "fk_secret_value"
    await cache.registry.put_principal(hash_api_key(key), PrincipalRecord("demo", "key_1"), ttl_s=60)
    assert await cache.registry.principal(hash_api_key(key)) == PrincipalRecord("demo", "key_1")
    raw = redis.Redis.from_url(redis_url)
    keys = [k.decode() for k in raw.scan_iter(f"{namespace}:*")]
    assert keys and all(key not in k for k in keys)
    assert all(key.encode() not in (raw.get(k) or b"") for k in keys)
    assert 0 < raw.ttl(f"{namespace}:reg:key:{hash_api_key(key)}") <= 60


async def test_keys_refuse_anything_but_a_hash(cache: FleetCache) -> None:
    with pytest.raises(ValueError):
        await cache.registry.put_principal("plaintext-key", PrincipalRecord("demo", "k"), ttl_s=60)


async def test_invalidation_deletes_tombstones_and_announces(cache: FleetCache) -> None:
    got: list[Invalidation] = []
    listener = cache.invalidation_listener(got.append)
    listener.start()
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        await cache.registry.put_model("a/1", b"{record}", ttl_s=60)
        await cache.registry.put_alias("demo", "alpha", "a/1", ttl_s=60)
        await cache.registry.put_latest("a", "demo", "a/1", ttl_s=60)
        assert await cache.registry.model("a/1") == b"{record}"
        assert await cache.registry.latest("a", "demo") == "a/1"
        sent = [Invalidation("model", model_id="a/1"), Invalidation("alias", workspace="demo", alias="alpha")]
        await cache.registry.invalidate(sent)
        assert await cache.registry.model("a/1") is None and await cache.registry.alias("demo", "alpha") is None
        assert await cache.registry.latest("a", "demo") is None  # a model change may move <project>/latest
        # A reader that fetched the old row before the write cannot put it back for a few seconds.
        await cache.registry.put_model("a/1", b"{old}", ttl_s=60)
        assert await cache.registry.model("a/1") is None
        for _ in range(100):
            if len(got) == 2:
                break
            await asyncio.sleep(0.02)
        assert got == sent
    finally:
        await listener.close()


def test_invalidation_codec_round_trips_and_refuses_unknown_kinds() -> None:
    inv = Invalidation("key", key_sha256="ab" * 32)
    assert Invalidation.decode(inv.encode()) == inv
    with pytest.raises(ValueError):
        Invalidation.decode(b'{"kind": "everything"}')


async def test_inference_log_is_a_sorted_set_per_worker_and_model(cache: FleetCache, redis_url: str,
                                                                  namespace: str) -> None:
    entries = [("m/1", 1000.0 + i, {"i": i}) for i in range(5)] + [("n/1", 2000.0, {"i": 99})]
    await cache.inference_log.record_many("w1", entries, expiry_s=100, max_entries=3)
    assert [e["i"] for e in await cache.inference_log.recent("w1", "m/1")] == [4, 3, 2]  # trimmed to 3
    raw = redis.Redis.from_url(redis_url)
    assert raw.type(f"{namespace}:inference:w1:m/1") == b"zset"
    assert 0 < raw.ttl(f"{namespace}:inference:w1:m/1") <= 100


async def test_heartbeats_are_typed_records_that_expire(cache: FleetCache, redis_url: str, namespace: str) -> None:
    one = WorkerState(worker_id="w1", address="127.0.0.1:1", sequence=7,
                      models=[ModelLoad(model_id="m/1", sha256="ab" * 32, in_flight=3, outstanding=2.5, outstanding_low=1.0)])
    await cache.heartbeats.beat(one, ttl_s=0.3)
    await cache.heartbeats.beat(WorkerState(worker_id="w2", address="127.0.0.1:2"), ttl_s=30)
    live = await cache.heartbeats.live()
    assert set(live) == {"w1", "w2"} and live["w1"] == one
    assert live["w1"].models[0].outstanding == 2.5 and live["w1"].models[0].outstanding_low == 1.0
    sync = redis.Redis.from_url(redis_url)
    sync.set(f"{namespace}:worker:w2", b"\xff not a WorkerState")
    sync.set(f"{namespace}:worker-compact:w2", b"\xff not a WorkerState")
    assert set(await cache.heartbeats.live()) == {"w1", "w2"}  # unchanged in the index: not fetched again
    sync.zadd(f"{namespace}:workers", {"w2": time.time() + 1})  # as a beat would
    assert set(await cache.heartbeats.live()) == {"w1"}  # a record that does not parse is skipped, not raised
    await cache.heartbeats.beat(WorkerState(worker_id="w1", address="127.0.0.1:1", sequence=8), ttl_s=0.3)
    assert (await cache.heartbeats.live())["w1"].sequence == 8  # a new beat is read
    await asyncio.sleep(0.5)
    assert set(await cache.heartbeats.live()) == set()
    await cache.heartbeats.leave("w2")
    assert await cache.heartbeats.live() == {}


async def test_copy_floors_round_trip(cache: FleetCache) -> None:
    await cache.copy_floors.put(CopyFloor("m/1", "demo", 3))
    await cache.copy_floors.put(CopyFloor("n/1", "other", 2))
    assert await cache.copy_floors.all() == {"m/1": CopyFloor("m/1", "demo", 3), "n/1": CopyFloor("n/1", "other", 2)}
    await cache.copy_floors.delete("m/1")
    assert set(await cache.copy_floors.all()) == {"n/1"}


async def test_response_cache_round_trip(cache: FleetCache) -> None:
    digest = "ab" * 32
    assert await cache.responses.get(digest) is None
    await cache.responses.put(digest, b"payload", ttl_s=30)
    assert await cache.responses.get(digest) == b"payload"


async def test_redis_down_is_cache_unavailable_and_recovers(own_redis: EmbeddedRedis) -> None:
    fc = FleetCache.from_url(own_redis.url, timeout_s=0.5)
    restarted = EmbeddedRedis(port=own_redis.port)
    try:
        await fc.registry.put_model("a/1", b"x", ttl_s=60)
        own_redis.stop()
        with pytest.raises(CacheUnavailable, match="Redis is unavailable"):
            await fc.registry.model("a/1")
        restarted.start()  # same port, empty data
        assert await fc.registry.model("a/1") is None
    finally:
        restarted.stop()
        await fc.close()


async def test_the_listener_resubscribes_when_redis_comes_back(own_redis: EmbeddedRedis) -> None:
    fc = FleetCache.from_url(own_redis.url, timeout_s=0.5, namespace="t")
    got: list[Invalidation] = []
    resubscribed: list[bool] = []
    listener = fc.invalidation_listener(got.append, lambda: resubscribed.append(True))
    listener.start()
    try:
        await asyncio.wait_for(listener.subscribed.wait(), 5)
        own_redis.stop()
        for _ in range(100):
            if not listener.subscribed.is_set():
                break
            await asyncio.sleep(0.05)
        assert not listener.subscribed.is_set()
        own_redis.start()  # same port, empty
        await asyncio.wait_for(listener.subscribed.wait(), 10)
        assert resubscribed == [True]  # the owner is told messages may have been missed
        await fc.registry.invalidate([Invalidation("key", key_sha256="cd" * 32)])
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        assert got == [Invalidation("key", key_sha256="cd" * 32)]
    finally:
        await listener.close()
        await fc.close()


async def test_a_placement_record_names_the_first_claimant_until_it_fails_or_settles(cache: FleetCache) -> None:
    sha = "ab" * 32
    assert await cache.placements.claim("m/1", sha, "10.0.0.1:1", 30.0) == "10.0.0.1:1"  # won
    assert await cache.placements.claim("m/1", sha, "10.0.0.2:1", 30.0) == "10.0.0.1:1"  # loading there already
    assert await cache.placements.loading("m/1", sha) == "10.0.0.1:1"
    assert await cache.placements.claim("m/1", "cd" * 32, "10.0.0.2:1", 30.0) == "10.0.0.2:1"  # another version
    await cache.placements.clear("m/1", sha, "10.0.0.2:1")  # not the one recorded: left alone
    assert await cache.placements.loading("m/1", sha) == "10.0.0.1:1"
    await cache.placements.clear("m/1", sha, "10.0.0.1:1")  # its load failed
    assert await cache.placements.loading("m/1", sha) is None
    assert await cache.placements.claim("m/1", sha, "10.0.0.2:1", 30.0) == "10.0.0.2:1"
    await cache.placements.settle("m/1", sha, "10.0.0.2:1", 0.05)  # loaded: kept until heartbeats list it
    await asyncio.sleep(0.15)
    assert await cache.placements.loading("m/1", sha) is None


async def test_copies_loading_are_counted_for_every_gateway_until_they_end_or_expire(cache: FleetCache) -> None:
    assert await cache.placements.copy_started("hot/1", "10.0.0.1:1", 30.0)
    assert not await cache.placements.copy_started("hot/1", "10.0.0.1:1", 30.0)  # another gateway's, already
    assert await cache.placements.copy_started("hot/1", "10.0.0.2:1", 30.0)
    assert await cache.placements.copy_started("cold/1", "10.0.0.2:1", 0.001)
    await asyncio.sleep(0.05)
    assert await cache.placements.copies_loading() == {"hot/1": 2}  # the expired one is dropped
    await cache.placements.copy_ended("hot/1", "10.0.0.1:1")
    assert await cache.placements.copies_loading() == {"hot/1": 1}
