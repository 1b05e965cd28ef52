"""A coroutine run every N seconds until stopped: heartbeats, log flushing, placement refresh.

Stopping sets an event the loop waits on rather than relying on cancellation alone:
a client library that swallows a ``CancelledError`` (as a Redis call caught mid-flight
can) must not keep a service from shutting down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from services.common.cancelling import cancel_within

log = logging.getLogger("fleet.periodic")


class Periodic:
    def __init__(self, name: str, interval_s: float, tick: Callable[[], Awaitable[None]]) -> None:
        self.name, self.interval_s, self.tick = name, interval_s, tick
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - a failed tick must not end the loop
                log.exception("%s failed; retrying in %.1fs", self.name, self.interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval_s)

    async def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:  # a tick still under way: cancelled (again, where Python 3.11 loses one)
            await cancel_within(self._task)
