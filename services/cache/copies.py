"""Copies of a model asked for with ``AddModel(copies=N)``: a floor every gateway replica keeps.

One Redis hash (``Keys.copy_floors``) maps a model id to its ``CopyFloor``; ``CopyFloor.encode`` /
``decode`` are the record's one codec. Floors have no TTL: they last until ``RemoveModel`` (or
``ClearModels`` of the model's workspace) deletes them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis

from services.cache.errors import redis_call
from services.cache.keys import Keys

log = logging.getLogger("fleet.cache.copies")


@dataclass(frozen=True)
class CopyFloor:
    model_id: str
    workspace: str
    min_copies: int

    def encode(self) -> bytes:
        return json.dumps({"workspace": self.workspace, "min_copies": self.min_copies}).encode()

    @classmethod
    def decode(cls, model_id: str, payload: bytes) -> CopyFloor | None:
        try:
            data = json.loads(payload)
            return cls(model_id, str(data["workspace"]), int(data["min_copies"]))
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a copy floor that does not parse", extra={"model_id": model_id})
            return None


class CopyFloors:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._r, self._k = client, keys

    @redis_call
    async def put(self, floor: CopyFloor) -> None:
        await self._r.hset(self._k.copy_floors(), floor.model_id, floor.encode())

    @redis_call
    async def delete(self, *model_ids: str) -> None:
        if model_ids:
            await self._r.hdel(self._k.copy_floors(), *model_ids)

    @redis_call
    async def all(self) -> dict[str, CopyFloor]:
        raw = await self._r.hgetall(self._k.copy_floors())
        floors = (CopyFloor.decode(k.decode(), v) for k, v in raw.items())
        return {f.model_id: f for f in floors if f is not None}
