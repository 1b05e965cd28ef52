"""Worker heartbeats: each worker publishes its ``WorkerState`` with a TTL; readers see live ones only.

The record is the protobuf message ``fleet.internal.v1.WorkerState``; ``encode`` / ``decode`` here are
its one codec, beside the keys it lives under (``Keys.worker``, ``Keys.worker_compact``,
``Keys.workers_index``). The index scores each worker with the time of its last beat, so a reader fetches
only the records published since its last read (a gateway reading every second, workers beating every two,
reads each record once).

Each beat is written twice, in one transaction: the full record, and the compact one
(``heartbeat_codec``: how the models differ from the beat before, a few bytes a model that changed). A
reader holding a worker's previous beat reads only the compact record; one that does not (it just started,
missed a beat, or the worker restarted) reads the full record. A worker of an older release writes only
the full record, and a gateway of an older release reads only that: either side may be upgraded first.
"""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from google.protobuf.message import DecodeError

from fleet.internal.v1.worker_pb2 import WorkerState
from services.cache.errors import redis_call
from services.cache.heartbeat_codec import CompactEncoder, StaleBase, apply
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
        self._encoders: dict[str, CompactEncoder] = {}  # worker id -> its encoder (a worker publishes one)
        self.bytes_read = 0  # record bytes fetched by ``live`` (what the compact records save)

    @redis_call
    async def beat(self, state: WorkerState, ttl_s: float) -> None:
        encoder = self._encoders.setdefault(state.worker_id, CompactEncoder())
        full, compact = encoder.encode(state)
        px = max(1, int(ttl_s * 1000))
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._k.worker(state.worker_id), encode(full), px=px)
            pipe.set(self._k.worker_compact(state.worker_id), encode(compact), px=px)
            pipe.zadd(self._k.workers_index(), {state.worker_id: time.time()})
            await pipe.execute()

    @redis_call
    async def leave(self, worker_id: str) -> None:
        self._encoders.pop(worker_id, None)
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(self._k.worker(worker_id), self._k.worker_compact(worker_id))
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
        fetched, missing = await self._fetch(changed)
        if unchanged:  # still there? (a record past its TTL is gone, its index entry not yet)
            async with self._r.pipeline(transaction=False) as pipe:
                for worker_id in unchanged:
                    pipe.exists(self._k.worker(worker_id))
                exists = await pipe.execute()
            missing |= {w for w, there in zip(unchanged, exists) if not there}
        read: dict[str, tuple[float, WorkerState]] = {}
        for worker_id, score in scored:
            state = fetched.get(worker_id)
            if state is not None:
                read[worker_id] = (score, state)
            elif worker_id not in missing and worker_id in unchanged:
                read[worker_id] = self._read[worker_id]
            # else: gone (dropped from the index below), or a record that does not parse (skipped)
        if missing:
            await self._r.zrem(self._k.workers_index(), *missing)
        self._read = read
        return {w: state for w, (_, state) in read.items()}

    async def _fetch(self, worker_ids: list[str]) -> tuple[dict[str, WorkerState], set[str]]:
        """The workers' new states (the compact record applied to the state last read where it refers to that
        one, else the full record), and the workers with no record (expired). A record that does not parse is
        in neither."""
        if not worker_ids:
            return {}, set()
        out: dict[str, WorkerState] = {}
        full_needed = []
        compacts = await self._r.mget([self._k.worker_compact(w) for w in worker_ids])
        for worker_id, value in zip(worker_ids, compacts):
            state = self._decode(value)
            if state is not None:
                try:
                    out[worker_id] = apply(self._read.get(worker_id, (None, None))[1], state)
                    continue
                except StaleBase:
                    pass
            full_needed.append(worker_id)  # not held, missed a beat, or a worker publishing full records only
        missing = set()
        if full_needed:
            for worker_id, value in zip(full_needed, await self._r.mget([self._k.worker(w) for w in full_needed])):
                if value is None:
                    missing.add(worker_id)
                elif (state := self._decode(value)) is not None:
                    out[worker_id] = state
        return out, missing

    def _decode(self, value: bytes | None) -> WorkerState | None:
        if value is None:
            return None
        self.bytes_read += len(value)
        return decode(value)
