"""The Redis layer against a real Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis

from services.cache import FleetCache
from fleet.keys import hash_api_key
from services.cache.embedded import EmbeddedRedis
from services.common.errors import CacheUnavailable


async def test_api_keys_are_stored_only_as_hashes(cache: FleetCache, redis_url: str, namespace: str) -> None:
    key = "fk_secret_value"
    await cache.api_keys.put(hash_api_key(key), "demo")
    await cache.auth.put(hash_api_key(key), "demo", ttl_s=60)
    assert await cache.api_keys.workspace_for(hash_api_key(key)) == "demo"
    assert await cache.auth.get(hash_api_key(key)) == "demo"
    raw = redis.Redis.from_url(redis_url)
    keys = [k.decode() for k in raw.scan_iter(f"{namespace}:*")]
    assert keys and all(key not in k for k in keys)
    assert all(key.encode() not in (raw.get(k) or b"") for k in keys)
    assert 0 < raw.ttl(f"{namespace}:auth:{hash_api_key(key)}") <= 60


async def test_keys_refuse_anything_but_a_hash(cache: FleetCache) -> None:
    with pytest.raises(ValueError):
        await cache.api_keys.put("plaintext-key", "demo")


async def test_model_metadata_and_aliases(cache: FleetCache) -> None:
    await cache.models.put("a/1", b"{record a}", aliases=("alpha",))
    await cache.models.put("b/2", b"{record b}")
    assert await cache.models.get("a/1") == b"{record a}"
    assert await cache.models.resolve_alias("alpha") == "a/1"
    assert await cache.models.ids() == ["a/1", "b/2"]
    assert await cache.models.get_many(["b/2", "zzz/1"]) == [b"{record b}", None]
    await cache.models.delete("a/1", aliases=("alpha",))
    assert await cache.models.get("a/1") is None and await cache.models.resolve_alias("alpha") is None


async def test_inference_log_is_a_sorted_set_per_worker_and_model(cache: FleetCache, redis_url: str,
                                                                  namespace: str) -> None:
    entries = [("m/1", 1000.0 + i, {"i": i}) for i in range(5)] + [("n/1", 2000.0, {"i": 99})]
    await cache.inference_log.record_many("w1", entries, expiry_s=100, max_entries=3)
    assert [e["i"] for e in await cache.inference_log.recent("w1", "m/1")] == [4, 3, 2]  # trimmed to 3
    raw = redis.Redis.from_url(redis_url)
    assert raw.type(f"{namespace}:inference:w1:m/1") == b"zset"
    assert 0 < raw.ttl(f"{namespace}:inference:w1:m/1") <= 100


async def test_heartbeats_expire(cache: FleetCache) -> None:
    await cache.heartbeats.beat("w1", {"address": "127.0.0.1:1", "models": ["m/1"]}, ttl_s=0.3)
    await cache.heartbeats.beat("w2", {"address": "127.0.0.1:2"}, ttl_s=30)
    live = await cache.heartbeats.live()
    assert live["w1"]["models"] == ["m/1"] and set(live) == {"w1", "w2"}
    await asyncio.sleep(0.5)
    assert set(await cache.heartbeats.live()) == {"w2"}
    await cache.heartbeats.leave("w2")
    assert await cache.heartbeats.live() == {}


async def test_response_cache_round_trip(cache: FleetCache) -> None:
    digest = "ab" * 32
    assert await cache.responses.get(digest) is None
    await cache.responses.put(digest, b"payload", ttl_s=30)
    assert await cache.responses.get(digest) == b"payload"


async def test_redis_down_is_cache_unavailable_and_recovers(own_redis: EmbeddedRedis) -> None:
    fc = FleetCache.from_url(own_redis.url, timeout_s=0.5)
    restarted = EmbeddedRedis(port=own_redis.port)
    try:
        await fc.models.put("a/1", b"x")
        own_redis.stop()
        with pytest.raises(CacheUnavailable, match="Redis is unavailable"):
            await fc.models.get("a/1")
        restarted.start()  # same port, empty data
        assert await fc.models.get("a/1") is None
    finally:
        restarted.stop()
        await fc.close()
