"""The inference log: one sorted set per worker and model, scored by time (as the seed's)."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from services.cache.errors import redis_call
from services.cache.keys import Keys

DEFAULT_EXPIRY_S = 3600
DEFAULT_MAX_ENTRIES = 10_000


class InferenceLog:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys

    @redis_call
    async def record_many(
        self,
        worker_id: str,
        entries: list[tuple[str, float, dict[str, Any]]],
        expiry_s: int = DEFAULT_EXPIRY_S,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        """Append (model_id, unix time, entry) triples; trims each set and refreshes its expiry."""
        by_model: dict[str, dict[bytes, float]] = {}
        for model_id, ts, entry in entries:
            by_model.setdefault(model_id, {})[json.dumps(entry, sort_keys=True).encode()] = ts
        async with self._r.pipeline(transaction=False) as pipe:
            for model_id, members in by_model.items():
                key = self._k.inference_log(worker_id, model_id)
                pipe.zadd(key, members)
                pipe.zremrangebyrank(key, 0, -(max_entries + 1))
                pipe.expire(key, expiry_s)
            await pipe.execute()

    @redis_call
    async def recent(self, worker_id: str, model_id: str, limit: int = 100) -> list[dict[str, Any]]:
        raw = await self._r.zrevrange(self._k.inference_log(worker_id, model_id), 0, limit - 1)
        return [json.loads(item) for item in raw]
