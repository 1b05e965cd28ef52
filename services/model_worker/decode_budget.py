"""A worker-wide budget of decoded pixels in flight, across every concurrent request.

The per-image limits (``ImageLimits``) bound one image; this bounds them together: four
40-megapixel PNGs of 5 KB each decoded at once would otherwise take hundreds of MB at once.

A request reserves its image's pixel count, read from the header, just before decoding, in
the CPU thread that decodes (``Reservation.reserve``): when the budget has room and nobody is
waiting, that costs nothing more. Otherwise the thread gives up with ``BudgetWait`` before
decoding, the request waits on the event loop, in arrival order, for at most ``wait_s``, and
then decodes, or answers RESOURCE_EXHAUSTED. The reservation is returned (``release``, on the
event loop) once the decoded pixels are no longer held.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from services.common.errors import ResourceExhausted
from services.model_worker.metrics import DECODE_BUDGET_IN_USE, DECODE_BUDGET_REJECTED


class BudgetWait(Exception):
    """Raised in a CPU thread: the budget has no room now for ``pixels``; wait on the loop, then retry."""

    def __init__(self, pixels: int) -> None:
        super().__init__(pixels)
        self.pixels = pixels


class DecodeBudget:
    def __init__(self, capacity_pixels: int, wait_s: float) -> None:
        self.capacity, self.wait_s = capacity_pixels, wait_s
        self.in_use = 0
        self.high_water = 0  # most pixels ever reserved at once (for tests and logs)
        self._lock = threading.Lock()
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _take(self, pixels: int) -> None:  # with the lock held
        self.in_use += pixels
        self.high_water = max(self.high_water, self.in_use)
        DECODE_BUDGET_IN_USE.set(self.in_use)

    def try_take(self, pixels: int) -> bool:
        """Reserve at once if there is room and nobody waits ahead (any thread)."""
        with self._lock:
            if self._waiters or self.in_use + pixels > self.capacity:
                return False
            self._take(pixels)
            return True

    async def take(self, pixels: int) -> None:
        """Reserve, waiting in arrival order for at most ``wait_s``; ResourceExhausted after that."""
        if pixels > self.capacity:  # settings keep the budget above one image's limit; never wait forever
            raise ResourceExhausted(f"the image's {pixels} pixels exceed this worker's decode budget")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (pixels, future)
        with self._lock:
            self._waiters.append(entry)
        self._grant()  # room may have been freed while nobody was waiting
        try:
            async with asyncio.timeout(self.wait_s):
                await future
        except BaseException as exc:
            granted = future.done() and not future.cancelled()
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)
            if granted:  # granted just as the wait ended: hand the pixels back
                self.give_back(pixels)
            else:
                self._grant()  # a smaller request behind this one may fit now
            if isinstance(exc, TimeoutError):
                DECODE_BUDGET_REJECTED.inc()
                raise ResourceExhausted(
                    "the worker is decoding too many large images at once; retry shortly, or send smaller images"
                ) from None
            raise

    def give_back(self, pixels: int) -> None:
        """Return a reservation (on the event loop) and wake the waiters that now fit."""
        with self._lock:
            self.in_use -= pixels
            DECODE_BUDGET_IN_USE.set(self.in_use)
        self._grant()

    def _grant(self) -> None:
        with self._lock:
            while self._waiters and self.in_use + self._waiters[0][0] <= self.capacity:
                pixels, future = self._waiters.popleft()
                if not future.done():
                    self._take(pixels)
                    future.set_result(None)

    def reservation(self) -> Reservation:
        return Reservation(self)


class Reservation:
    """One request's share of the budget: reserved in a thread or on the loop, released on the loop."""

    def __init__(self, budget: DecodeBudget) -> None:
        self.budget = budget
        self.pixels = 0

    def reserve(self, pixels: int) -> None:
        """In the decoding thread, before decoding: hold ``pixels`` or raise BudgetWait."""
        if self.pixels >= pixels:
            return
        if not self.budget.try_take(pixels):
            raise BudgetWait(pixels)
        self.pixels = pixels

    async def wait(self, pixels: int) -> None:
        """On the loop, after BudgetWait: hold ``pixels`` once there is room (ResourceExhausted after wait_s)."""
        await self.budget.take(pixels)
        self.pixels = pixels

    def release(self) -> None:
        if self.pixels:
            pixels, self.pixels = self.pixels, 0
            self.budget.give_back(pixels)
