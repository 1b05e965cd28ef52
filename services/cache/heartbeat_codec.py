"""The compact heartbeat: a worker's state as the difference from its previous heartbeat.

A worker's full ``WorkerState`` lists every model it holds with its load (about 150 bytes a model: the id,
the sha256, the workspace...), and it is published every interval whether anything changed or not; at
thousands of workers with dozens of models each, reading those records costs every gateway megabytes a
second. Most of it does not change from one heartbeat to the next: the models held change when a load or an
eviction happens, and most models' load is the same (idle) or shifts a little.

So each heartbeat is published twice (``Heartbeats.beat``): the full record (``models`` filled), and a
compact one (``models_from`` set) that says only how the models differ from the heartbeat before: models
removed (by position), models added (whole entries), load figures that changed (``ModelLoadChange``, by
position, in hundredths), and the least-recently-used order where idle seconds do not give it. A reader
that holds the previous heartbeat (same boot id, sequence ``models_from``) applies it (``apply``); one that
does not (it started, or missed a beat) reads the full record once, then follows the compact ones.

``CompactEncoder`` keeps what such a reader holds (the decoded previous state) and compares the worker's
new state with it, so what it sends never drifts from what readers have: a figure is sent when its rounded
value differs from theirs, a time (idle, measured) when it differs from theirs advanced by the time between
the two heartbeats by more than ``tolerance_s``. The full record it publishes is that same decoded state,
so a gateway reading either record sees the same figures (rounded to hundredths, times to tenths).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from fleet.internal.v1.worker_pb2 import ModelLoad, ModelLoadChange, WorkerState

SCALE = 100  # load figures travel in hundredths
TIME_SCALE = 10  # times in tenths of a second
_COMPACT_FIELDS = ("models_from", "models_removed", "models_added", "models_changed", "models_order")
_FIGURES = ("requests_per_second", "outstanding", "outstanding_low", "outstanding_high")


class StaleBase(Exception):
    """The compact record refers to a heartbeat the reader does not hold: read the full record."""


def _q(value: float) -> int:
    return max(0, int(round(value * SCALE)))


def _t(value: float) -> int:
    return max(0, int(round(value * TIME_SCALE)))


def _elapsed(before: WorkerState, after: WorkerState) -> float:
    """Seconds between two heartbeats of one worker: by their publication times, else by sequence."""
    if before.HasField("published_at") and after.HasField("published_at"):
        nanos = after.published_at.ToNanoseconds() - before.published_at.ToNanoseconds()
        return max(0.0, nanos / 1e9)
    return max(0, after.sequence - before.sequence) * after.interval_seconds


def rounded(load: ModelLoad) -> ModelLoad:
    """A model's entry as readers hold it: figures in hundredths, times in tenths."""
    out = ModelLoad()
    out.CopyFrom(load)
    for name in _FIGURES:
        setattr(out, name, _q(getattr(load, name)) / SCALE)
    out.idle_seconds = _t(load.idle_seconds) / TIME_SCALE
    out.measured_seconds = _t(load.measured_seconds) / TIME_SCALE
    return out


def is_compact(state: WorkerState) -> bool:
    return state.models_from != 0


def apply(before: WorkerState | None, compact: WorkerState) -> WorkerState:
    """The full state a compact record describes, from the heartbeat it refers to; a full record is returned
    as it is. Raises ``StaleBase`` when ``before`` is not that heartbeat."""
    if not compact.models_from:
        return compact
    if before is None or before.boot_id != compact.boot_id or before.sequence != compact.models_from:
        raise StaleBase(compact.worker_id)
    entries = _entries(before, compact)
    full = WorkerState()
    full.CopyFrom(compact)
    for name in _COMPACT_FIELDS:
        full.ClearField(name)
    full.models.extend(_ordered(entries, compact.models_order))
    return full


def _entries(before: WorkerState, compact: WorkerState) -> list[tuple[int, ModelLoad]]:
    """(position, entry) for every model the compact record describes, earlier ones first, then the added."""
    elapsed = _elapsed(before, compact)
    measured_step = (compact.sequence - before.sequence) * compact.interval_seconds
    removed = set(compact.models_removed)
    changes = {c.position: c for c in compact.models_changed}
    entries = []
    for position, earlier in enumerate(before.models):
        if position in removed:
            continue
        change = changes.get(position)
        if change is None:
            entry = ModelLoad(
                model_id=earlier.model_id, sha256=earlier.sha256, workspace=earlier.workspace,
                size_bytes=earlier.size_bytes, pinned=earlier.pinned, in_flight=earlier.in_flight,
                queued=earlier.queued, requests_per_second=earlier.requests_per_second,
                outstanding=earlier.outstanding, outstanding_low=earlier.outstanding_low,
                outstanding_high=earlier.outstanding_high,
                measured_seconds=earlier.measured_seconds + measured_step,
                idle_seconds=earlier.idle_seconds + elapsed)
        else:
            entry = ModelLoad(
                model_id=earlier.model_id, sha256=earlier.sha256, workspace=earlier.workspace,
                size_bytes=earlier.size_bytes, pinned=earlier.pinned, in_flight=change.in_flight,
                queued=change.queued, requests_per_second=change.requests_per_second_x100 / SCALE,
                outstanding=change.outstanding_x100 / SCALE, outstanding_low=change.outstanding_low_x100 / SCALE,
                outstanding_high=change.outstanding_high_x100 / SCALE,
                measured_seconds=(change.measured_deciseconds / TIME_SCALE if change.HasField("measured_deciseconds")
                                  else earlier.measured_seconds + measured_step),
                idle_seconds=(change.idle_deciseconds / TIME_SCALE if change.HasField("idle_deciseconds")
                              else earlier.idle_seconds + elapsed))
        entries.append((position, entry))
    base = len(before.models)
    entries.extend((base + i, added) for i, added in enumerate(compact.models_added))
    return entries


def _ordered(entries: list[tuple[int, ModelLoad]], order: Iterable[int]) -> list[ModelLoad]:
    order = list(order)
    if order:
        by_position = dict(entries)
        return [by_position[p] for p in order if p in by_position]
    # Least recently used first: the most idle first (sorted is stable: ties keep their order).
    return [e for _, e in sorted(entries, key=lambda pe: -pe[1].idle_seconds)]


def _same_model(a: ModelLoad, b: ModelLoad) -> bool:
    return (a.model_id, a.sha256, a.workspace, a.size_bytes, a.pinned) == (b.model_id, b.sha256, b.workspace,
                                                                          b.size_bytes, b.pinned)


class CompactEncoder:
    """One worker's heartbeats as (full record, compact record); the full one is what readers of the compact
    ones hold. Keep one per worker process."""

    def __init__(self, tolerance_s: float = 0.5) -> None:
        self.tolerance_s = tolerance_s
        self.last: WorkerState | None = None  # what a reader of every record holds now

    def encode(self, state: WorkerState) -> tuple[WorkerState, WorkerState]:
        before = self.last
        if before is None or before.boot_id != state.boot_id or state.sequence <= before.sequence:
            full = WorkerState()
            full.CopyFrom(state)
            del full.models[:]
            full.models.extend(rounded(m) for m in state.models)
            self.last = full
            return full, full
        compact = self._compact(before, state)
        entries = _entries(before, compact)
        wanted = [m.model_id for m in state.models]
        if [e.model_id for e in _ordered(entries, ())] != wanted:
            at = {e.model_id: p for p, e in entries}
            compact.models_order.extend(at[m] for m in wanted)
        full = WorkerState()
        full.CopyFrom(compact)
        for name in _COMPACT_FIELDS:
            full.ClearField(name)
        full.models.extend(_ordered(entries, compact.models_order))
        self.last = full
        return full, compact

    def _compact(self, before: WorkerState, state: WorkerState) -> WorkerState:
        compact = WorkerState()
        compact.CopyFrom(state)
        compact.ClearField("models")
        compact.models_from = before.sequence
        elapsed = _elapsed(before, state)
        measured_step = (state.sequence - before.sequence) * state.interval_seconds
        earlier = {m.model_id: (p, m) for p, m in enumerate(before.models)}
        kept: set[int] = set()
        tolerance = self.tolerance_s
        for load in state.models:
            found = earlier.get(load.model_id)
            if found is None or not _same_model(found[1], load):
                compact.models_added.append(rounded(load))
                continue
            position, old = found
            kept.add(position)
            change = ModelLoadChange(
                position=position, in_flight=load.in_flight, queued=load.queued,
                requests_per_second_x100=_q(load.requests_per_second), outstanding_x100=_q(load.outstanding),
                outstanding_low_x100=_q(load.outstanding_low), outstanding_high_x100=_q(load.outstanding_high))
            differs = (load.in_flight != old.in_flight or load.queued != old.queued
                       or change.requests_per_second_x100 != _q(old.requests_per_second)
                       or change.outstanding_x100 != _q(old.outstanding)
                       or change.outstanding_low_x100 != _q(old.outstanding_low)
                       or change.outstanding_high_x100 != _q(old.outstanding_high))
            if abs(load.idle_seconds - (old.idle_seconds + elapsed)) > tolerance:
                change.idle_deciseconds = _t(load.idle_seconds)
                differs = True
            if not math.isclose(load.measured_seconds, old.measured_seconds + measured_step, abs_tol=tolerance):
                change.measured_deciseconds = _t(load.measured_seconds)
                differs = True
            if differs:
                compact.models_changed.append(change)
        compact.models_removed.extend(p for p in range(len(before.models)) if p not in kept)
        return compact
