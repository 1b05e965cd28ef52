"""How a model's requests spread over the workers holding it: water-filling by what else each holder serves.

Routing's two random choices compare requests in flight: a noisy figure at one moment, and one that says nothing
of a holder's other models. A holder of a hot model that also serves other models then takes as much of the hot
model as a holder that serves nothing else, and is the fleet's busiest worker (issue 30: max / mean requests per
worker). Here each holder gets a share of the model's requests by its room under a common level: with ``o`` the
requests per second its other models bring it and ``R`` the model's own over all its holders (both from the
heartbeats, weighed by cost: ``copy_demand.rate_by_cost``), the level ``L`` is the one where the rooms
``max(0, L - o)`` add up to ``R``, so a holder's total would be ``L`` wherever it has room, and a holder already
busier than ``L`` with other work is given only a floor (``floor`` x ``L``: it stays measured and in use).
Routing draws its two choices by these shares (the second other than the first), then takes the one with fewer
requests in flight.

The shares are worked out once per model per read of the heartbeats (``Spread.new_read``: for the models routed
since the read before; for a model routed first since then, on its first request); a request costs two draws by
bisection. Where no holder's heartbeat tells of the model's rate (a quiet fleet, a new copy), there are no shares
and routing draws its choices evenly.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.gateway.copy_demand import rate_by_cost
from services.gateway.endpoint import WorkerEndpoint, lighter_first

FLOOR = 0.1  # a holder busier than the level with other work keeps this share of the level as its weight
DRAWS = 4  # draws for each of the pair before routing falls back to even choices


def level(other: Sequence[float], total: float) -> float:
    """The water level ``L`` with ``sum(max(0, L - o) for o in other) == total`` (``total`` > 0, ``other`` not
    empty): the holders' rooms under it carry the model's requests."""
    below = 0.0
    ordered = sorted(other)
    for k, o in enumerate(ordered, start=1):
        below += o
        candidate = (total + below) / k  # the level if the k least busy holders take it all
        if k == len(ordered) or candidate <= ordered[k]:
            return candidate
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Shares:
    holders: tuple[WorkerEndpoint, ...]
    cumulative: tuple[float, ...]  # running sums of the holders' weights

    def draw(self, rng: random.Random, ok: Callable[[WorkerEndpoint], bool]) -> WorkerEndpoint | None:
        """A holder drawn by the shares for which ``ok`` holds (None: none in ``DRAWS`` draws)."""
        for _ in range(DRAWS):
            point = rng.random() * self.cumulative[-1]
            endpoint = self.holders[min(len(self.holders) - 1, bisect.bisect_right(self.cumulative, point))]
            if ok(endpoint):
                return endpoint
        return None


def shares(model_id: str, holders: Sequence[WorkerEndpoint], floor: float = FLOOR) -> Shares | None:
    """Each holder's weight for the model's requests (None: fewer than two holders with a heartbeat, or no rate
    of the model known)."""
    measured, own, other = [], [], []
    for endpoint in holders:
        if endpoint.state is None:
            continue
        load = endpoint.load_of(model_id)
        mine = rate_by_cost((endpoint, load)) if load is not None else 0.0
        measured.append(endpoint)
        own.append(mine)
        other.append(endpoint.rate - mine if endpoint.rate > mine else 0.0)
    total = sum(own)
    if len(measured) < 2 or total <= 0.0:
        return None
    top = level(other, total)
    least = floor * top
    cumulative = list(itertools.accumulate(top - o if top - o > least else least for o in other))
    return Shares(tuple(measured), tuple(cumulative))


class Spread:
    """The shares of the models being routed (one gateway's, kept on its view): worked out anew at each read of
    the heartbeats for the models routed since the read before (off the requests' path), and on a request for a
    model not routed then. Models not routed between two reads are dropped."""

    def __init__(self, holding: Callable[[str], list[WorkerEndpoint]]) -> None:
        self._holding = holding
        self._shares: dict[str, Shares | None] = {}
        self._routed: set[str] = set()  # models routed since the last read

    def new_read(self) -> None:
        """The heartbeats were read again: the shares of the models routed since the read before are worked out
        anew; the others are dropped."""
        routed, holding = self._routed, self._holding
        self._shares = {m: shares(m, holding(m)) for m in routed}
        self._routed = set()

    def drop(self) -> None:
        """A worker left the view: no shares drawn from before (they are worked out again as requests come)."""
        self._shares.clear()

    def pair(self, model_id: str, holders: list[WorkerEndpoint], usable: Callable[[WorkerEndpoint], bool],
             rng: random.Random) -> list[WorkerEndpoint] | None:
        """Two distinct usable holders, each drawn by the shares (the second other than the first), the one with
        fewer requests in flight first; None where there are no shares or the draws found no such pair (then
        routing draws evenly)."""
        if len(holders) < 2:
            return None
        self._routed.add(model_id)
        try:
            found = self._shares[model_id]
        except KeyError:
            found = self._shares[model_id] = shares(model_id, holders)
        if found is None:
            return None
        a = found.draw(rng, usable)
        b = None if a is None else found.draw(rng, lambda e: e is not a and usable(e))
        return None if b is None else lighter_first(a, b)
