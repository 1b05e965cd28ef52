"""Loads in flight: a short-lived record, per model version, of the worker some gateway is loading it on.

The first gateway to place a model claims the record (``SET NX``) before its load call; every other gateway
placing the same model meanwhile finds the claim and sends its requests to that worker, where they wait for
the one load (a worker loads a model once however many requests ask) instead of starting another elsewhere.
The record lives for the load's deadline at most (a request joining it extends it to its own, ``join``);
once a load is done it stays a few seconds more (``settle``), until heartbeats list the copy; a load that
fails clears it (``clear``, only while it names that worker).

Copies the copies controllers decide are recorded too (one hash, ``copy_started`` / ``copy_ended``): every
gateway counts the copies loading now, whoever decided them, so demand is not answered once per gateway.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from services.cache.errors import redis_call
from services.cache.keys import Keys

# Make the record last at least ARGV[2] ms more, only while it still names this worker.
_EXTEND_IF_THERE = """
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Delete the record only while it still names this worker (another gateway may have claimed it since).
_CLEAR_IF_OURS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Placements:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys
        self._clear = client.register_script(_CLEAR_IF_OURS)
        self._extend = client.register_script(_EXTEND_IF_THERE)

    @redis_call
    async def claim(self, model_id: str, sha256: str, address: str, ttl_s: float) -> str:
        """Record that ``address`` is loading the model, unless a load is already recorded: returns the worker
        address that is loading it now (``address`` when this claim won)."""
        previous = await self._r.set(self._k.placement(model_id, sha256), address, nx=True, get=True,
                                     px=max(1, int(ttl_s * 1000)))
        return address if previous is None else previous.decode()

    @redis_call
    async def join(self, model_id: str, sha256: str, address: str, ttl_s: float) -> None:
        """A request joins the load recorded on ``address``: the record lasts as long as that request may wait
        (it may be the one that starts a load there again, the last one having finished and been evicted)."""
        await self._extend(keys=[self._k.placement(model_id, sha256)], args=[address, max(1, int(ttl_s * 1000))])

    @redis_call
    async def loading(self, model_id: str, sha256: str) -> str | None:
        """The worker a load of the model is recorded on, if any."""
        value = await self._r.get(self._k.placement(model_id, sha256))
        return value.decode() if value is not None else None

    @redis_call
    async def settle(self, model_id: str, sha256: str, address: str, ttl_s: float) -> None:
        """The load on ``address`` is done: keep the record only ``ttl_s`` more (until heartbeats list it)."""
        await self._r.set(self._k.placement(model_id, sha256), address, xx=True, px=max(1, int(ttl_s * 1000)))

    @redis_call
    async def clear(self, model_id: str, sha256: str, address: str) -> None:
        """The load on ``address`` failed: forget it (only if the record still names that worker)."""
        await self._clear(keys=[self._k.placement(model_id, sha256)], args=[address])

    # ---- copies the copies controllers decided, while they load ------------------------------------------
    @redis_call
    async def copy_started(self, model_id: str, address: str, ttl_s: float) -> bool:
        """Record a copy of the model loading on ``address``; False when some gateway recorded it already."""
        until = int((time.time() + ttl_s) * 1000)
        return bool(await self._r.hsetnx(self._k.copies_loading(), f"{model_id}|{address}", until))

    @redis_call
    async def copy_ended(self, model_id: str, address: str) -> None:
        await self._r.hdel(self._k.copies_loading(), f"{model_id}|{address}")

    @redis_call
    async def copies_loading(self) -> dict[str, int]:
        """Model id -> copies loading now, by every gateway (records past their time are dropped)."""
        raw = await self._r.hgetall(self._k.copies_loading())
        now, counts, stale = time.time() * 1000, {}, []
        for field, until in raw.items():
            name = field.decode()
            if int(until) < now:
                stale.append(name)
                continue
            model_id = name.rpartition("|")[0]
            counts[model_id] = counts.get(model_id, 0) + 1
        if stale:
            await self._r.hdel(self._k.copies_loading(), *stale)
        return counts
