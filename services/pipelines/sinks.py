"""Where a pipeline's results go, all in Redis so that every replica can answer for any pipeline and results
survive a takeover: the buffer ``consume`` pops (a list bounded to the pipeline's size: the oldest is
dropped and counted), and a Redis Stream (XADD MAXLEN ~) that gRPC subscriptions and other systems read.
"""

from __future__ import annotations

import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.errors import Unavailable
from services.pipelines.metrics import FRAMES_DROPPED
from services.pipelines.spec import FrameResult

log = logging.getLogger("fleet.pipelines.sinks")

# Push a result, trim the buffer to its size, and count what the trim dropped: one round trip.
_PUSH = """
local n = redis.call('rpush', KEYS[1], ARGV[1])
local size = tonumber(ARGV[2])
if n > size then
  redis.call('ltrim', KEYS[1], n - size, -1)
  redis.call('hincrby', KEYS[2], 'buffer_dropped', n - size)
  return n - size
end
return 0
"""


class ResultSinks:
    def __init__(self, redis: Redis, prefix: str, stream_maxlen: int, replica: str) -> None:
        self.redis, self.prefix, self.maxlen, self.replica = redis, prefix, stream_maxlen, replica
        self._push = redis.register_script(_PUSH)
        self.failures = 0

    def buffer_key(self, pipeline_id: str) -> str:
        return f"{self.prefix}:buffer:{pipeline_id}"

    def stream_key(self, pipeline_id: str) -> str:
        return f"{self.prefix}:results:{pipeline_id}"

    def counters_key(self, pipeline_id: str) -> str:
        return f"{self.prefix}:counters:{pipeline_id}"

    async def put(self, result: FrameResult, buffer_size: int) -> None:
        body = json.dumps({**result.to_json(), "replica": self.replica})
        pid = result.pipeline_id
        try:
            dropped = await self._push(keys=[self.buffer_key(pid), self.counters_key(pid)], args=[body, buffer_size])
            if dropped:
                FRAMES_DROPPED.labels("buffer").inc(int(dropped))
            await self.redis.xadd(self.stream_key(pid), {"result": body}, maxlen=self.maxlen, approximate=True)
        except RedisError as exc:
            self.failures += 1
            if self.failures in (1, 100, 10_000):
                log.warning("result sinks failing", extra={"error": type(exc).__name__})

    async def pop(self, pipeline_id: str, count: int) -> list[dict]:
        try:
            raw = await self.redis.lpop(self.buffer_key(pipeline_id), count)
        except RedisError:
            raise Unavailable("the pipelines' result buffer is unavailable; retry shortly") from None
        return [json.loads(r) for r in raw or []]

    async def read_stream(self, pipeline_id: str, last_id: str, block_ms: int, count: int) -> list[tuple[str, dict]]:
        """Results after ``last_id`` ('$': from now on), waiting up to ``block_ms`` for the first."""
        try:
            reply = await self.redis.xread({self.stream_key(pipeline_id): last_id}, count=count, block=block_ms)
        except RedisError:
            raise Unavailable("the pipelines' result stream is unavailable; retry shortly") from None
        out = []
        for _, entries in reply or []:
            for entry_id, fields in entries:
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                body = fields.get(b"result") or fields.get("result")
                out.append((entry_id, json.loads(body)))
        return out

    async def recent_replicas(self, pipeline_id: str, count: int) -> list[str]:
        """The replicas that wrote the pipeline's latest ``count`` results, newest first ([] when Redis is away)."""
        try:
            entries = await self.redis.xrevrange(self.stream_key(pipeline_id), count=count)
        except RedisError:
            return []
        return [json.loads(fields.get(b"result") or fields.get("result")).get("replica", "") for _, fields in entries]

    async def buffer_dropped(self, pipeline_id: str) -> int:
        try:
            return int(await self.redis.hget(self.counters_key(pipeline_id), "buffer_dropped") or 0)
        except RedisError:
            return 0

    async def delete(self, pipeline_id: str) -> None:
        try:
            await self.redis.delete(self.buffer_key(pipeline_id), self.stream_key(pipeline_id),
                                    self.counters_key(pipeline_id))
        except RedisError:
            pass
