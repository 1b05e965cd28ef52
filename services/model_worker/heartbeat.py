"""Publishes the worker's state to Redis so gateways can see who holds which model, and how busy."""

from __future__ import annotations

import contextlib
import logging

from services.cache import FleetCache
from services.common.errors import CacheUnavailable
from services.common.periodic import Periodic
from services.model_worker.state import StatePublisher

log = logging.getLogger("fleet.worker.heartbeat")


class Heartbeat:
    def __init__(self, cache: FleetCache, publisher: StatePublisher) -> None:
        self.cache, self.publisher = cache, publisher
        self.interval_s = publisher.interval_s
        self._periodic = Periodic("heartbeat", self.interval_s, self.beat)

    async def beat(self) -> None:
        try:
            await self.cache.heartbeats.beat(self.publisher.next(), ttl_s=self.interval_s * 3)
        except CacheUnavailable:
            log.warning("heartbeat not published: Redis unavailable")

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()
        with contextlib.suppress(CacheUnavailable):
            await self.cache.heartbeats.leave(self.publisher.worker_id)
