"""One heartbeat's models by id, kept where Python's garbage collector does not walk them.

A gateway applies every worker's heartbeat as it reads it: at 2,000 workers with 64 models each that is
~1,000 heartbeats and ~64,000 model entries a second. Held as protobuf ``ModelLoad`` wrappers in a dict (one
Python object per model, tracked by the cyclic collector), each read leaves ~64,000 young objects behind it
(the entries of the beat before are freed, so no collection runs during the read); the next collection, in
whatever runs next on the event loop (routing, a planning step), walks all of them: 40-70 ms for the young
generation, ~1 s when it is a full one (the fleet simulator's s2000m64, docs/placement.md).

``ModelLoads`` holds the heartbeat itself (one message) and an index of model id to position (a dict of strings
to ints, which the collector does not track). An entry is the heartbeat's own ``ModelLoad``, its wrapper made
when asked for and freed when the caller drops it: a read leaves a handful of objects per worker, not one per
model. It reads as the ``dict[str, ModelLoad]`` it replaces (a read-only ``Mapping``).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView

from fleet.internal.v1.worker_pb2 import ModelLoad, WorkerState


class ModelLoads(Mapping[str, ModelLoad]):
    __slots__ = ("state", "_models", "_at", "_in_order")

    def __init__(self, state: WorkerState | None = None) -> None:
        self.state = state
        self._models = state.models if state is not None else ()
        self._at = {m.model_id: i for i, m in enumerate(self._models)}  # (str -> int: not tracked by gc)
        # Positions 0..n-1 in order (no model listed twice, as heartbeats list them): pairs by zipping.
        self._in_order = len(self._at) == len(self._models)
        if not self._in_order:  # a model listed twice: the last entry counts, as a dict built from the list
            for i, m in enumerate(self._models):
                self._at[m.model_id] = i

    def __getitem__(self, model_id: str) -> ModelLoad:
        return self._models[self._at[model_id]]

    def get(self, model_id: str, default: ModelLoad | None = None) -> ModelLoad | None:  # type: ignore[override]
        at = self._at.get(model_id)
        return default if at is None else self._models[at]

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._at

    def __iter__(self) -> Iterator[str]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)

    def __repr__(self) -> str:
        return f"ModelLoads({list(self._at)})"

    def keys(self) -> KeysView[str]:
        return self._at.keys()

    def items(self) -> ItemsView[str, ModelLoad]:
        return _Items(self)

    def values(self) -> ValuesView[ModelLoad]:
        return _Values(self)

    def pairs(self) -> Iterator[tuple[str, ModelLoad]]:
        if self._in_order:
            return zip(self._at, self._models)
        models = self._models
        return ((m, models[i]) for m, i in self._at.items())

    def entries(self) -> Iterator[ModelLoad]:
        if self._in_order:
            return iter(self._models)
        models = self._models
        return (models[i] for i in self._at.values())


class _Items(ItemsView):
    __slots__ = ()

    def __iter__(self) -> Iterator[tuple[str, ModelLoad]]:
        return self._mapping.pairs()


class _Values(ValuesView):
    __slots__ = ()

    def __iter__(self) -> Iterator[ModelLoad]:
        return self._mapping.entries()
