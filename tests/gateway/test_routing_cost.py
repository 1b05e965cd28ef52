"""Routing's cost per request at fleet scale: the first choice among a hot model's holders looks at two."""

from __future__ import annotations

import random

from services.gateway import routing
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.view import FleetView
from tests.gateway.test_workers import SHA, load, state


def fleet(holders: int, workers: int) -> FleetView:
    view = FleetView()
    for i in range(workers):
        address = f"10.0.{i // 256}.{i % 256}:50053"
        endpoint = view.add(WorkerEndpoint(address))
        endpoint.apply(state(f"w{i}", address, *([load("hot/1", in_flight=i % 7)] if i < holders else [])))
    return view


def test_the_first_choice_among_hundreds_of_holders_checks_two_of_them() -> None:
    view = fleet(holders=300, workers=400)
    checked = 0
    for endpoint in view.holding("hot/1"):
        def counting(model_id: str, sha256: str, real=endpoint.holds) -> bool:  # noqa: ANN001
            nonlocal checked
            checked += 1
            return real(model_id, sha256)
        endpoint.holds = counting  # type: ignore[method-assign]
    rng = random.Random(3)
    for _ in range(50):
        attempts = routing.attempts(view, "hot/1", SHA, 0, rng)
        first, second = next(attempts), next(attempts)
        assert first.existing and second.existing and first.endpoint is not second.endpoint
        assert first.endpoint.outstanding() <= second.endpoint.outstanding()  # the less loaded of the two
    assert checked <= 50 * 2 * 4  # two holders a draw (filtering them all: 300 a request)
    # Retries go on to the other holders by load, each once.
    order = [a.endpoint for a in routing.attempts(view, "hot/1", SHA, 0, rng) if a.existing]
    assert len(order) == len(set(map(id, order))) == 300


def test_holders_mostly_out_of_rotation_still_leave_the_usable_ones_first() -> None:
    view = fleet(holders=40, workers=60)
    usable = view.holding("hot/1")[7]
    for endpoint in view.holding("hot/1"):
        endpoint.failed = endpoint is not usable
    rng = random.Random(5)
    for _ in range(20):
        first = next(routing.attempts(view, "hot/1", SHA, 0, rng))
        assert first.endpoint is usable and first.existing


def test_a_load_listed_in_one_heartbeat_only_or_beside_a_holder_is_not_waited_for() -> None:
    """Loads the workers' heartbeats list are waited for only past what a placement record covers (listed in
    three heartbeats), and only where no holder is left (beside one, a new copy is an overflow)."""
    view = fleet(holders=0, workers=20)
    loader = view.endpoints["10.0.0.5:50053"]
    rng = random.Random(7)
    for sequence in (2, 3, 4):
        beat = state("w5", loader.address, sequence=sequence)
        beat.models_loading.append("cold/1")
        loader.apply(beat)
        first = next(routing.attempts(view, "cold/1", SHA, 0, rng)).endpoint
        assert (first is loader) == (sequence == 4)
    holder = view.endpoints["10.0.0.9:50053"]
    holder.apply(state("w9", holder.address, load("cold/1"), sequence=2))
    order = [a.endpoint for a in routing.attempts(view, "cold/1", SHA, 0, rng)]
    assert order[0] is holder and order[1:] == list(routing.homes(view, "cold/1", 0, skip={id(holder)}))
