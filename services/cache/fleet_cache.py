"""``FleetCache``: typed access to every Redis structure the fleet uses."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.cache.api_keys import ApiKeyStore, AuthCache
from services.cache.copies import CopyFloors
from services.cache.errors import redis_call
from services.cache.heartbeats import Heartbeats
from services.cache.inference_log import InferenceLog
from services.cache.keys import Keys
from services.cache.model_metadata import ModelMetadata
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
        self.api_keys = ApiKeyStore(client, self.keys)
        self.auth = AuthCache(client, self.keys)
        self.models = ModelMetadata(client, self.keys)
        self.inference_log = InferenceLog(client, self.keys)
        self.responses = ResponseCache(client, self.keys)
        self.heartbeats = Heartbeats(client, self.keys)
        self.copy_floors = CopyFloors(client, self.keys)

    @classmethod
    def from_url(cls, url: str, timeout_s: float = 2.0, namespace: str = "fleet") -> FleetCache:
        return cls(create_redis(url, timeout_s), namespace)

    @redis_call
    async def ping(self) -> bool:
        return bool(await self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()
