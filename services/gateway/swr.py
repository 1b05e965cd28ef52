"""An in-process cache that keeps serving while its source is unavailable (stale-while-revalidate).

For each entry, by age since it was last fetched:

- younger than ``refresh_after_s``: served as is (``hit``);
- up to ``max_stale_s``: served, and fetched again in the background (one fetch per key at a time,
  at most one try a second while the source fails); an entry served after a failed fetch counts as
  ``stale``;
- older, or absent: fetched inline (``miss``); when the source is unavailable that fails.

A definitive answer (NotFound, Unauthenticated, ...) drops the entry; only ``Unavailable`` and
``DeadlineExceeded`` count as the source being down. ``drop`` takes entries out at once (pub/sub
invalidations); a fetch that began before a drop does not put its result back. ``mark_all_due``
makes every entry revalidate on next use (after invalidation messages may have been missed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import Counter

from services.common.errors import DeadlineExceeded, FleetError, Unavailable

log = logging.getLogger("fleet.gateway.swr")

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
RETRY_AFTER_FAILURE_S = 1.0


@dataclass
class _Entry(Generic[V]):
    value: V
    fetched_at: float
    due: bool = False
    failed_at: float = 0.0


class StaleWhileRevalidate(Generic[K, V]):
    def __init__(self, name: str, refresh_after_s: float, max_stale_s: float, max_entries: int,
                 counter: Counter) -> None:
        self.name, self.refresh_after_s = name, refresh_after_s
        self.max_stale_s = max(max_stale_s, refresh_after_s)
        self.max_entries, self.counter = max_entries, counter
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Task[V]] = {}
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None:
            age = now - entry.fetched_at
            if age < self.refresh_after_s and not entry.due:
                self._entries.move_to_end(key)
                self.counter.labels("hit").inc()
                return entry.value
            if age < self.max_stale_s:
                self._entries.move_to_end(key)
                if now - entry.failed_at >= RETRY_AFTER_FAILURE_S:
                    self._background(key, fetch)
                self.counter.labels("stale" if entry.failed_at else "hit").inc()
                return entry.value
            self._entries.pop(key, None)
        self.counter.labels("miss").inc()
        return await asyncio.shield(self._fetch(key, fetch))

    def _fetch(self, key: K, fetch: Callable[[], Awaitable[V]]) -> asyncio.Task[V]:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(key, fetch, self._generation))
            self._inflight[key] = task
            task.add_done_callback(lambda _: self._inflight.pop(key, None))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved even if nobody waits
        return task

    def _background(self, key: K, fetch: Callable[[], Awaitable[V]]) -> None:
        if key not in self._inflight:
            self._fetch(key, fetch)

    async def _run(self, key: K, fetch: Callable[[], Awaitable[V]], generation: int) -> V:
        try:
            value = await fetch()
        except (Unavailable, DeadlineExceeded):
            entry = self._entries.get(key)
            if entry is not None:
                entry.failed_at = time.monotonic()
            raise
        except FleetError:
            self._entries.pop(key, None)
            raise
        if generation == self._generation:
            self._entries[key] = _Entry(value, time.monotonic())
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def drop(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)

    def drop_where(self, predicate: Callable[[K, V], bool]) -> int:
        self._generation += 1
        doomed = [k for k, e in self._entries.items() if predicate(k, e.value)]
        for k in doomed:
            self._entries.pop(k, None)
        return len(doomed)

    def mark_all_due(self) -> None:
        for entry in self._entries.values():
            entry.due = True

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
