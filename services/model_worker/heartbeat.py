"""Publishes the worker's state to Redis so gateways can see who holds which model."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from services.cache import FleetCache
from services.common.errors import CacheUnavailable

log = logging.getLogger("fleet.worker.heartbeat")


class Heartbeat:
    def __init__(self, cache: FleetCache, worker_id: str, interval_s: float,
                 state: Callable[[], dict[str, Any]]) -> None:
        self.cache, self.worker_id, self.interval_s, self.state = cache, worker_id, interval_s, state
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        try:
            await self.cache.heartbeats.beat(self.worker_id, self.state(), ttl_s=self.interval_s * 3)
        except CacheUnavailable:
            log.warning("heartbeat not published: Redis unavailable")

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await self.beat()
                await asyncio.sleep(self.interval_s)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(CacheUnavailable):
            await self.cache.heartbeats.leave(self.worker_id)
