"""Worker heartbeats: each worker publishes its ``WorkerState`` with a TTL; readers see live ones only.

The record is the protobuf message ``fleet.internal.v1.WorkerState``; ``encode`` / ``decode`` here are
its one codec, beside the keys it lives under (``Keys.worker``, ``Keys.workers_index``).
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from google.protobuf.message import DecodeError

from fleet.internal.v1.worker_pb2 import WorkerState
from services.cache.errors import redis_call
from services.cache.keys import Keys

log = logging.getLogger("fleet.cache.heartbeats")


def encode(state: WorkerState) -> bytes:
    return state.SerializeToString()


def decode(payload: bytes) -> WorkerState | None:
    """The state in ``payload``, or None for a record that is not one (logged, never raised)."""
    try:
        return WorkerState.FromString(payload)
    except DecodeError:
        log.warning("ignoring a heartbeat record that does not parse")
        return None


class Heartbeats:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys

    @redis_call
    async def beat(self, state: WorkerState, ttl_s: float) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._k.worker(state.worker_id), encode(state), px=max(1, int(ttl_s * 1000)))
            pipe.zadd(self._k.workers_index(), {state.worker_id: time.time()})
            await pipe.execute()

    @redis_call
    async def leave(self, worker_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(self._k.worker(worker_id))
            pipe.zrem(self._k.workers_index(), worker_id)
            await pipe.execute()

    @redis_call
    async def live(self) -> dict[str, WorkerState]:
        """worker id -> last published state, for workers whose heartbeat has not expired."""
        ids = [v.decode() for v in await self._r.zrange(self._k.workers_index(), 0, -1)]
        if not ids:
            return {}
        values = await self._r.mget([self._k.worker(w) for w in ids])
        alive = {}
        for worker_id, value in zip(ids, values):
            state = decode(value) if value is not None else None
            if state is not None:
                alive[worker_id] = state
        stale = [w for w, v in zip(ids, values) if v is None]
        if stale:
            await self._r.zrem(self._k.workers_index(), *stale)
        return alive
