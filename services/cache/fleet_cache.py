"""``FleetCache``: typed access to every Redis structure the fleet uses."""

from __future__ import annotations

from collections.abc import Callable

import redis.asyncio as aioredis

from services.cache.copies import CopyFloors
from services.cache.errors import redis_call
from services.cache.heartbeats import Heartbeats
from services.cache.inference_log import InferenceLog
from services.cache.invalidation import InvalidationListener
from services.cache.keys import Keys
from services.cache.placements import Placements
from services.cache.registry_cache import RegistryCache
from services.cache.registry_records import Invalidation
from services.cache.responses import ResponseCache


def create_redis(url: str, timeout_s: float = 2.0) -> aioredis.Redis:
    """An asyncio Redis client (bytes in, bytes out) with bounded timeouts."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
        retry_on_timeout=False,
    )


class FleetCache:
    """All of the fleet's Redis data, grouped by purpose."""

    def __init__(self, client: aioredis.Redis, namespace: str = "fleet") -> None:
        self.client = client
        self.keys = Keys(namespace)
        self.registry = RegistryCache(client, self.keys)
        self.inference_log = InferenceLog(client, self.keys)
        self.responses = ResponseCache(client, self.keys)
        self.heartbeats = Heartbeats(client, self.keys)
        self.copy_floors = CopyFloors(client, self.keys)
        self.placements = Placements(client, self.keys)

    @classmethod
    def from_url(cls, url: str, timeout_s: float = 2.0, namespace: str = "fleet") -> FleetCache:
        return cls(create_redis(url, timeout_s), namespace)

    def invalidation_listener(self, on_message: Callable[[Invalidation], None],
                              on_resubscribe: Callable[[], None] | None = None) -> InvalidationListener:
        return InvalidationListener(self.client, self.keys, on_message, on_resubscribe)

    @redis_call
    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()
