"""Worker heartbeats: each worker publishes its state with a TTL; readers see live ones only."""

from __future__ import annotations

import json
import time
from typing import Any

import redis.asyncio as aioredis

from services.cache.errors import redis_call
from services.cache.keys import Keys


class Heartbeats:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys

    @redis_call
    async def beat(self, worker_id: str, state: dict[str, Any], ttl_s: float) -> None:
        now = time.time()
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._k.worker(worker_id), json.dumps({**state, "ts": now}).encode(), px=int(ttl_s * 1000))
            pipe.zadd(self._k.workers_index(), {worker_id: now})
            await pipe.execute()

    @redis_call
    async def leave(self, worker_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(self._k.worker(worker_id))
            pipe.zrem(self._k.workers_index(), worker_id)
            await pipe.execute()

    @redis_call
    async def live(self) -> dict[str, dict[str, Any]]:
        """worker id -> last published state, for workers whose heartbeat has not expired."""
        ids = [v.decode() for v in await self._r.zrange(self._k.workers_index(), 0, -1)]
        if not ids:
            return {}
        values = await self._r.mget([self._k.worker(w) for w in ids])
        alive = {w: json.loads(v) for w, v in zip(ids, values) if v is not None}
        stale = [w for w, v in zip(ids, values) if v is None]
        if stale:
            await self._r.zrem(self._k.workers_index(), *stale)
        return alive
