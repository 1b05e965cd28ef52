"""How a model's requests spread over its holders: water-filling by what else each holder serves (``spread``)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from services.gateway import routing
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.spread import level, shares
from services.gateway.view import FleetView
from tests.gateway.test_workers import SHA, load, state


@pytest.mark.parametrize(("other", "total", "expected"), [
    ([0.0, 0.0], 10.0, 5.0),  # even where the holders are alike
    ([0.0, 20.0], 10.0, 10.0),  # a holder busier than the level takes none of it
    ([2.0, 4.0, 9.0], 6.0, 6.0),  # rooms 4 + 2 under 6; the third is over it
    ([3.0], 2.0, 5.0),
    ([5.0, 1.0, 3.0], 9.0, 6.0),  # the order given does not matter: rooms 1 + 5 + 3
])
def test_the_level_is_where_the_holders_rooms_carry_the_models_requests(other, total, expected) -> None:  # noqa: ANN001
    top = level(other, total)
    assert top == pytest.approx(expected)
    assert sum(max(0.0, top - o) for o in other) == pytest.approx(total)


def fleet(*others: float, hot_rate: float = 4.0, sequence: int = 1) -> FleetView:
    """One holder of ``hot/1`` per entry of ``others``, each taking ``hot_rate`` requests a second of it and as
    many of other models as its entry says; two workers that hold nothing."""
    view = FleetView()
    for i, other in enumerate([*others, None, None]):
        address = f"10.0.0.{i}:50053"
        endpoint = view.add(WorkerEndpoint(address))
        models = [] if other is None else [load("hot/1", rate=hot_rate), load(f"own{i}/1", rate=other)]
        endpoint.apply(state(f"w{i}", address, *models, sequence=sequence))
    return view


def first_choices(view: FleetView, n: int = 3000, seed: int = 3) -> Counter[str]:
    rng = random.Random(seed)
    return Counter(next(routing.attempts(view, "hot/1", SHA, 0, rng)).endpoint.address for _ in range(n))


def test_a_holder_busy_with_other_models_is_given_less_of_the_model() -> None:
    # Holder 0 takes 12 requests a second of other models, holders 1-3 none; hot/1 brings 16 in all. The level is
    # 16 / 3: rooms under it for 1-3 only (0 is over it), so 0 keeps its floor (about 3 %) and 1-3 share the rest.
    view = fleet(12.0, 0.0, 0.0, 0.0)
    got = first_choices(view)
    busy, idle = got["10.0.0.0:50053"], [got[f"10.0.0.{i}:50053"] for i in (1, 2, 3)]
    assert busy < 0.1 * sum(got.values())  # evenly it would be a quarter
    assert min(idle) > 0.25 * sum(got.values())
    assert sum(got.values()) == 3000 and set(got) <= {f"10.0.0.{i}:50053" for i in range(4)}


def test_holders_alike_share_the_model_evenly() -> None:
    got = first_choices(fleet(2.0, 2.0, 2.0, 2.0))
    assert all(abs(n - 750) < 150 for n in got.values()) and len(got) == 4


def test_shares_follow_the_next_read_of_the_heartbeats_not_before() -> None:
    view = fleet(12.0, 0.0, 0.0, 0.0)
    first_choices(view, n=10)  # routed: its shares are worked out again at the next read
    busy = view.endpoints["10.0.0.0:50053"]
    busy.apply(state("w0", busy.address, load("hot/1", rate=4.0), load("own0/1", rate=0.0), sequence=2))
    assert first_choices(view)[busy.address] < 300  # the shares of the read before still hold
    view.spread.new_read()
    assert first_choices(view)[busy.address] > 600  # now alike: about a quarter


def test_without_a_rate_of_the_model_routing_draws_evenly() -> None:
    view = fleet(12.0, 0.0, 0.0, 0.0, hot_rate=0.0)
    assert shares("hot/1", view.holding("hot/1")) is None
    got = first_choices(view)
    assert all(abs(n - 750) < 150 for n in got.values()) and len(got) == 4


def test_a_worker_that_left_is_not_drawn_from_shares_worked_out_before() -> None:
    view = fleet(0.0, 0.0, 12.0, 12.0)
    first_choices(view, n=10)
    view.spread.new_read()
    gone = view.remove("10.0.0.0:50053")
    assert gone is not None
    assert "10.0.0.0:50053" not in first_choices(view, n=500)


def test_holders_out_of_rotation_are_not_drawn() -> None:
    view = fleet(0.0, 0.0, 0.0, 12.0)
    for address in ("10.0.0.0:50053", "10.0.0.1:50053"):
        view.endpoints[address].failed = True
    got = first_choices(view, n=500)
    assert set(got) <= {"10.0.0.2:50053", "10.0.0.3:50053"} and got["10.0.0.2:50053"] > got["10.0.0.3:50053"]
