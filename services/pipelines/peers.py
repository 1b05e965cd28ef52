"""Where each pipelines replica can be reached: a typed record per replica in Redis, next to the leases.

A replica publishes ``ReplicaAddress`` at ``<namespace>:pipelines:replica:<replica id>`` when it starts
serving and every ``every_s`` after (expiring after ``ttl_s``, as its leases do: a dead replica's record goes
with them). A lease names its owner's replica id; this record turns that id into the address frames pushed
to another replica are forwarded to (``forwarding``). Kept apart from the lease so that the lease stays one
replica id, compared and renewed as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common.cancelling import cancel_within
from services.common.errors import Unavailable

log = logging.getLogger("fleet.pipelines.peers")

# Delete the record only while it is still this replica's (a restarted replica of the same id may have one).
_DELETE_OWN = ("local raw = redis.call('get', KEYS[1]) if raw and cjson.decode(raw)['address'] == ARGV[1] then "
               "return redis.call('del', KEYS[1]) else return 0 end")


@dataclass(frozen=True)
class ReplicaAddress:
    replica_id: str
    address: str  # host:port of the replica's gRPC server (its advertised address)
    published_at: float  # wall-clock seconds

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> ReplicaAddress:
        body = json.loads(raw)
        return cls(str(body["replica_id"]), str(body["address"]), float(body["published_at"]))


class ReplicaDirectory:
    def __init__(self, redis: Redis, prefix: str, replica_id: str, ttl_s: float, every_s: float) -> None:
        self.redis, self.prefix, self.replica_id = redis, prefix, replica_id
        self.ttl_s, self.every_s = ttl_s, every_s
        self.address = ""
        self._delete_own = redis.register_script(_DELETE_OWN)
        self._task: asyncio.Task | None = None

    def key(self, replica_id: str) -> str:
        return f"{self.prefix}:replica:{replica_id}"

    async def publish(self) -> None:
        record = ReplicaAddress(self.replica_id, self.address, time.time())
        await self.redis.set(self.key(self.replica_id), record.to_json(), px=int(self.ttl_s * 1000))

    async def lookup(self, replica_id: str) -> ReplicaAddress | None:
        """The replica's published record (None: unknown, or gone since its record expired)."""
        try:
            raw = await self.redis.get(self.key(replica_id))
        except RedisError:
            raise Unavailable("the pipelines' replica records are unavailable (Redis); retry shortly") from None
        if not raw:
            return None
        try:
            return ReplicaAddress.from_json(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable replica record", extra={"replica_id": replica_id[:128]})
            return None

    def start(self, address: str) -> None:
        self.address = address
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pipelines-replica-record")

    async def _run(self) -> None:
        while True:
            try:
                await self.publish()
            except RedisError as exc:  # Redis away: published again next time
                log.warning("publishing this replica's address failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.every_s)

    async def close(self) -> None:
        if self._task is not None:
            if not await cancel_within(self._task):
                log.warning("replica record loop still running after close; abandoned")
            self._task = None
            with contextlib.suppress(RedisError):
                await self._delete_own(keys=[self.key(self.replica_id)], args=[self.address])
