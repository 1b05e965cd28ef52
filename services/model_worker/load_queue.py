"""Which waiting load runs next when the worker's load slots are all busy: a plain rule, and the gate applying it.

A worker loads a few models at a time (``slots``: its load threads); under churn more loads wait than run, and
every request waiting for a model that is not loaded yet is a miss. Taking the waiting loads first come first
served lets a one-off request for a large model hold a slot while dozens of requests wait behind it for a
small, popular one. ``pick`` takes instead the load that serves the most waiting requests per second of
loading (``demand / cost``), the demand read when the slot frees (requests keep joining a queued load), the
longest waiting first among equals; a load waiting longer gains weight (``age_s``: its demand counts once more
for every ``age_s`` seconds waited) so a lone request is delayed, never starved. A load whose requests all
went away (their deadlines passed, their callers cancelled) leaves the queue with them: nothing runs for it.

The fleet simulator (``bench/fleet_sim``) orders its simulated workers' loads with the same ``pick``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

LOAD_FIXED_S = 0.2  # a load's cost apart from its bytes (opening a session), for ordering only
LOAD_BYTES_PER_S = 250 * (1 << 20)  # bytes fetched and opened per second, for ordering only
UNKNOWN_SIZE = 256 * (1 << 20)  # what a model of undeclared size is taken to weigh
AGE_S = 30.0


def load_cost(size_bytes: int | None) -> float:
    """Seconds a load of this many bytes is expected to take (relative: only the order matters)."""
    size = UNKNOWN_SIZE if size_bytes is None or size_bytes <= 0 else size_bytes
    return LOAD_FIXED_S + size / LOAD_BYTES_PER_S


@dataclass
class Waiting:
    demand: Callable[[], int]  # requests waiting for this load now (at least the one that asked)
    cost: float  # seconds it is expected to take (load_cost)
    since: float  # when it began to wait
    ready: asyncio.Future[None] | None = field(default=None, repr=False)


def pick(waiting: Sequence[Waiting], now: float, age_s: float = AGE_S) -> int:
    """The index of the load to run next: the most waiting requests served per second of loading, counting each
    ``age_s`` waited as one request more; the longest waiting among equals."""
    best, best_key = 0, None
    for i, w in enumerate(waiting):
        demand = max(1, w.demand()) + max(0.0, now - w.since) / age_s
        key = (demand / max(w.cost, 1e-3), -w.since)
        if best_key is None or key > best_key:
            best, best_key = i, key
    return best


class LoadQueue:
    """``async with queue.slot(demand, cost)``: wait for one of ``slots`` load slots, the waiting loads taken in
    ``pick``'s order as slots free."""

    def __init__(self, slots: int, clock: Callable[[], float] = time.monotonic, age_s: float = AGE_S) -> None:
        if slots < 1:
            raise ValueError("a load queue needs at least one slot")
        self.slots, self.clock, self.age_s = slots, clock, age_s
        self.running = 0
        self.waiting: list[Waiting] = []

    def __len__(self) -> int:
        """Loads waiting for a slot."""
        return len(self.waiting)

    @asynccontextmanager
    async def slot(self, demand: Callable[[], int], cost: float) -> AsyncIterator[None]:
        if self.running < self.slots and not self.waiting:
            self.running += 1
        else:
            entry = Waiting(demand, cost, self.clock(), asyncio.get_running_loop().create_future())
            self.waiting.append(entry)
            try:
                await entry.ready  # the slot is handed over by the load leaving it (running stays counted)
            except BaseException:
                if entry in self.waiting:
                    self.waiting.remove(entry)
                elif entry.ready is not None and entry.ready.done() and not entry.ready.cancelled():
                    self._free()  # handed a slot just as it was cancelled: pass it on
                raise
        try:
            yield
        finally:
            self._free()

    def _free(self) -> None:
        """A slot frees: hand it to the next waiting load (skipping any cancelled meanwhile), else it is free."""
        while self.waiting:
            entry = self.waiting.pop(pick(self.waiting, self.clock(), self.age_s))
            if entry.ready is not None and not entry.ready.done():
                entry.ready.set_result(None)
                return
        self.running -= 1
