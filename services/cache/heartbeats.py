"""Worker heartbeats: each worker publishes its ``WorkerState`` with a TTL; readers see live ones only.

The record is the protobuf message ``fleet.internal.v1.WorkerState``; ``encode`` / ``decode`` here are
its one codec, beside the keys it lives under (``Keys.worker``, ``Keys.workers_index``). The index scores
each worker with the time of its last beat, so a reader fetches only the records published since its last
read (a gateway reading every second, workers beating every two, reads each record once).
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
        self._read: dict[str, tuple[float, WorkerState]] = {}  # worker id -> (index score, state) last read

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
        """worker id -> last published state, for workers whose heartbeat has not expired; records unchanged
        since the last call (same index score) are not fetched again."""
        scored = [(v.decode(), score) for v, score in await self._r.zrange(self._k.workers_index(), 0, -1,
                                                                          withscores=True)]
        if not scored:
            self._read = {}
            return {}
        changed = [w for w, score in scored if self._read.get(w, (None,))[0] != score]
        unchanged = [w for w, score in scored if self._read.get(w, (None,))[0] == score]
        values = await self._r.mget([self._k.worker(w) for w in changed]) if changed else []
        fetched = dict(zip(changed, values))
        if unchanged:  # still there? (a record past its TTL is gone, its index entry not yet)
            async with self._r.pipeline(transaction=False) as pipe:
                for worker_id in unchanged:
                    pipe.exists(self._k.worker(worker_id))
                exists = await pipe.execute()
            fetched.update({w: None for w, there in zip(unchanged, exists) if not there})
        read: dict[str, tuple[float, WorkerState]] = {}
        stale = []
        for worker_id, score in scored:
            if worker_id not in fetched:
                read[worker_id] = self._read[worker_id]
                continue
            value = fetched[worker_id]
            state = decode(value) if value is not None else None
            if state is not None:
                read[worker_id] = (score, state)
            elif value is None:
                stale.append(worker_id)
        if stale:
            await self._r.zrem(self._k.workers_index(), *stale)
        self._read = read
        return {w: state for w, (_, state) in read.items()}
