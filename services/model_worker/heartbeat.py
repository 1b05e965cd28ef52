"""Publishes the worker's state to Redis so gateways can see who holds which model."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from services.cache import FleetCache
from services.common.errors import CacheUnavailable
from services.common.periodic import Periodic

log = logging.getLogger("fleet.worker.heartbeat")


class Heartbeat:
    def __init__(self, cache: FleetCache, worker_id: str, interval_s: float,
                 state: Callable[[], dict[str, Any]]) -> None:
        self.cache, self.worker_id, self.interval_s, self.state = cache, worker_id, interval_s, state
        self._periodic = Periodic("heartbeat", interval_s, self.beat)

    async def beat(self) -> None:
        try:
            await self.cache.heartbeats.beat(self.worker_id, self.state(), ttl_s=self.interval_s * 3)
        except CacheUnavailable:
            log.warning("heartbeat not published: Redis unavailable")

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        with contextlib.suppress(CacheUnavailable):
            await self.cache.heartbeats.leave(self.worker_id)
