"""How busy one model is on this worker: arrivals and the time-weighted mean of requests inside.

The manager calls ``enter`` / ``leave`` as requests acquire and release the model; each heartbeat
calls ``sample``, which closes the interval since the last one: the requests per second that
arrived and the mean number inside (so a burst between two heartbeats is seen, not missed as an
instantaneous count would). The last samples are kept, newest first; heartbeats publish only
summaries of them (``low`` / ``high`` over a window), never the samples themselves.

Requests that waited for the model's load enter once it is loaded, all at once, with the meter new and its
first interval only the part of a heartbeat interval left: counted over that moment they read as several
times the rate they arrived at. ``enter(arrived=...)`` says when a request reached the worker; the interval's
rate is counted from the earliest such arrival (the mean inside still from when the meter began).
"""

from __future__ import annotations

import time
from collections import deque


class BusyMeter:
    def __init__(self, history: int, clock=time.monotonic) -> None:  # noqa: ANN001 - a () -> float
        self._clock = clock
        self._inside = 0
        self._area = 0.0  # requests inside x seconds, since the interval began
        self._arrivals = 0
        self._since = self._last = clock()
        self._rate_since = self._since  # where the interval's arrivals are counted from (``enter(arrived=...)``)
        self.history: deque[float] = deque(maxlen=max(1, history))
        self.rate = 0.0
        self.sampled = 0  # intervals closed so far

    @property
    def inside(self) -> int:
        return self._inside

    def _advance(self) -> float:
        now = self._clock()
        self._area += self._inside * (now - self._last)
        self._last = now
        return now

    def enter(self, arrived: float | None = None) -> None:
        """A request is inside; ``arrived``: when it reached the worker, by this meter's clock (a request that
        waited for the load)."""
        self._advance()
        self._inside += 1
        self._arrivals += 1
        if arrived is not None and arrived < self._rate_since:
            self._rate_since = arrived

    def leave(self) -> None:
        self._advance()
        self._inside -= 1

    def sample(self) -> None:
        """Close the interval: record its mean requests inside and its arrival rate."""
        now = self._advance()
        span = now - self._since
        if span <= 0:
            return
        self.history.appendleft(self._area / span)
        self.rate = self._arrivals / (now - self._rate_since)
        self.sampled += 1
        self._area, self._arrivals, self._since = 0.0, 0, now
        self._rate_since = now

    @property
    def last(self) -> float:
        """The mean requests inside over the last closed interval (0 before one)."""
        return self.history[0] if self.history else 0.0

    def low(self, intervals: int) -> float:
        """The lowest mean over the last ``intervals`` closed intervals (those there are)."""
        return min((self.history[i] for i in range(min(intervals, len(self.history)))), default=0.0)

    def high(self, intervals: int) -> float:
        """The highest mean over the last ``intervals`` closed intervals (those there are)."""
        return max((self.history[i] for i in range(min(intervals, len(self.history)))), default=0.0)
