"""Reading heartbeats leaves no per-model objects for Python's garbage collector to walk.

At 2,000 workers x 64 models a gateway's heartbeat read kept ~64,000 young ``ModelLoad`` wrappers alive, and the
next collection (in a planning step, on the event loop) walked them all: 40-70 ms, ~1 s for a full one. The view
now keeps each heartbeat's models as the heartbeat plus an index the collector does not track
(``model_loads.ModelLoads``)."""

from __future__ import annotations

import gc

from fleet.internal.v1.worker_pb2 import ModelLoad
from services.gateway.model_loads import ModelLoads
from services.gateway.endpoint import WorkerEndpoint
from services.gateway.view import FleetView
from tests.gateway.test_workers import load, state

WORKERS, MODELS = 50, 64


def beat(view: FleetView, sequence: int) -> None:
    """Every worker's heartbeat: one model evicted and one loaded since the last, every figure changed."""
    for w in range(WORKERS):
        models = [load(f"m{w * MODELS + i + sequence}/1", in_flight=i % 3, rate=float(sequence),
                       history=[0.1 * i, 0.2]) for i in range(MODELS)]
        view.endpoints[f"10.0.0.{w}:1"].apply(state(f"w{w}", f"10.0.0.{w}:1", *models, sequence=sequence,
                                                    max_models=MODELS))


def fleet() -> FleetView:
    view = FleetView()
    view.windows = (10.0, 60.0)
    for w in range(WORKERS):
        view.add(WorkerEndpoint(f"10.0.0.{w}:1"))
    beat(view, 1)
    return view


def tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


def test_a_heartbeat_read_leaves_a_few_tracked_objects_per_worker_not_one_per_model() -> None:
    view = fleet()
    before = tracked()
    beat(view, 2)  # every worker's entries replaced, as each read does
    after_one = tracked()
    beat(view, 3)
    after_two = tracked()
    assert abs(after_two - after_one) <= WORKERS  # steady state
    # What the view holds per worker that the collector tracks: a handful of objects, whatever its model count
    # (a dict of wrappers held WORKERS x MODELS = 3,200 ModelLoad objects here).
    held = sum(isinstance(o, ModelLoad) for o in gc.get_objects())
    assert held < WORKERS
    assert after_one - before <= WORKERS
    endpoint = view.endpoints["10.0.0.7:1"]
    assert not gc.is_tracked(endpoint.loads._at) and not gc.is_tracked(endpoint.indexed)


def test_a_heartbeat_read_leaves_the_next_young_collection_a_few_references_per_worker() -> None:
    """A young collection's cost is the references it follows from the objects created since the last one: per
    worker read, the heartbeat and a few small containers, not its models (ModelLoad wrappers and a frozenset of
    their ids were over 2 x MODELS)."""
    view = fleet()
    gc.collect()
    gc.disable()
    try:
        beat(view, 2)
        young = gc.get_objects(generation=0)
        references = sum(len(gc.get_referents(o)) for o in young)
    finally:
        gc.enable()
    assert references < WORKERS * 20, (len(young), references)


def test_the_loads_read_as_the_dict_they_replace() -> None:
    models = [load("a/1", in_flight=1, rate=2.0), load("b/1", history=[3.0]), load("a/1", in_flight=5)]
    loads = ModelLoads(state("w", "x:1", *models))
    as_dict = {m.model_id: m for m in models}  # (a model listed twice: the last entry, as a dict built from them)
    assert dict(loads) == as_dict and dict(loads.items()) == as_dict
    assert list(loads) == list(as_dict) and len(loads) == 2 and "b/1" in loads and "c/1" not in loads
    assert loads["a/1"].in_flight == 5 and loads.get("b/1").outstanding == 3.0 and loads.get("c/1") is None
    assert [m.model_id for m in loads.values()] == ["a/1", "b/1"]
    assert loads.keys() - {"a/1"} == {"b/1"}
    in_order = ModelLoads(state("w", "x:1", *models[:2]))
    assert [(k, v.model_id) for k, v in in_order.items()] == [("a/1", "a/1"), ("b/1", "b/1")]
    assert dict(ModelLoads()) == {} and not ModelLoads()
