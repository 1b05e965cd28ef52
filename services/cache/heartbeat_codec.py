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

from collections.abc import Iterable

from fleet.internal.v1.worker_pb2 import ModelLoad, ModelLoadChange, WorkerState

SCALE = 100  # load figures travel in hundredths
TIME_SCALE = 10  # times in tenths of a second
_COMPACT_FIELDS = ("models_from", "models_removed", "models_added", "models_changed", "models_order")
_FIGURES = ("requests_per_second", "outstanding", "outstanding_low", "outstanding_high")


class StaleBase(Exception):
    """The compact record refers to a heartbeat the reader does not hold: read the full record."""


def _q(value: float) -> int:
    return int(value * SCALE + 0.5) if value > 0 else 0  # figures are never negative


def _t(value: float) -> int:
    return int(value * TIME_SCALE + 0.5) if value > 0 else 0


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


def apply(before: WorkerState | None, compact: WorkerState) -> WorkerState:
    """The full state a compact record describes, from the heartbeat it refers to; a full record is returned
    as it is. Raises ``StaleBase`` when ``before`` is not that heartbeat."""
    if not compact.models_from:
        return compact
    if before is None or before.boot_id != compact.boot_id or before.sequence != compact.models_from:
        raise StaleBase(compact.worker_id)
    return _build(compact, _entries(before, compact), compact.models_order)


# One model of a compact record, before it is built: its position, where its entry comes from, the change to
# its figures (None: as before), its idle seconds (what the default order sorts by), whether it was added.
_Entry = tuple[int, ModelLoad, "ModelLoadChange | None", float, bool]


def _entries(before: WorkerState, compact: WorkerState) -> list[_Entry]:
    """Every model the compact record describes, earlier ones first, then the added."""
    elapsed = _elapsed(before, compact)
    removed = set(compact.models_removed)
    changes = {c.position: c for c in compact.models_changed}
    entries: list[_Entry] = []
    for position, earlier in enumerate(before.models):
        if position in removed:
            continue
        change = changes.get(position)
        idle = (change.idle_deciseconds / TIME_SCALE if change is not None and change.HasField("idle_deciseconds")
                else earlier.idle_seconds + elapsed)
        entries.append((position, earlier, change, idle, False))
    base = len(before.models)
    entries.extend((base + i, added, None, added.idle_seconds, True) for i, added in enumerate(compact.models_added))
    return entries


def _order(entries: list[_Entry], order: Iterable[int]) -> list[_Entry]:
    order = list(order)
    if order:
        by_position = {e[0]: e for e in entries}
        return [by_position[p] for p in order if p in by_position]
    # Least recently used first: models with requests inside last (the worker moves a model to the end of its
    # LRU when a request takes it), the others the most idle first (sorted is stable: ties keep their order).
    return sorted(entries, key=lambda e: ((e[2] or e[1]).in_flight > 0, -e[3]))


def _build(compact: WorkerState, entries: list[_Entry], order: Iterable[int]) -> WorkerState:
    full = WorkerState()
    full.CopyFrom(compact)
    for name in _COMPACT_FIELDS:
        full.ClearField(name)
    step = (compact.sequence - compact.models_from) * compact.interval_seconds  # measured seconds since
    for _, source, change, idle, added in _order(entries, order):
        entry = full.models.add()
        entry.CopyFrom(source)  # (copying a message is far cheaper than building one field by field)
        if added:
            continue
        if change is None:
            entry.measured_seconds += step
        else:
            entry.in_flight, entry.queued = change.in_flight, change.queued
            entry.requests_per_second = change.requests_per_second_x100 / SCALE
            entry.outstanding = change.outstanding_x100 / SCALE
            entry.outstanding_low = change.outstanding_low_x100 / SCALE
            entry.outstanding_high = change.outstanding_high_x100 / SCALE
            entry.measured_seconds = (change.measured_deciseconds / TIME_SCALE if change.HasField("measured_deciseconds")
                                      else entry.measured_seconds + step)
        entry.idle_seconds = idle
    return full


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
        if (before is None or before.boot_id != state.boot_id or state.sequence <= before.sequence
                or not before.sequence):  # (models_from 0 would read as a full record)
            full = WorkerState()
            full.CopyFrom(state)
            del full.models[:]
            full.models.extend(rounded(m) for m in state.models)
            self.last = full
            return full, full
        compact = self._compact(before, state)
        entries = _entries(before, compact)
        wanted = [m.model_id for m in state.models]
        if [e[1].model_id for e in _order(entries, ())] != wanted:
            at = {e[1].model_id: e[0] for e in entries}
            compact.models_order.extend(at[m] for m in wanted)
        self.last = full = _build(compact, entries, compact.models_order)
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
            raw = (load.in_flight, load.queued, load.requests_per_second, load.outstanding, load.outstanding_low,
                   load.outstanding_high)
            differs = raw != (old.in_flight, old.queued, old.requests_per_second, old.outstanding,
                              old.outstanding_low, old.outstanding_high)
            if differs:  # (readers hold rounded figures: an idle model's zeros compare equal without rounding)
                figures = (raw[0], raw[1], _q(raw[2]), _q(raw[3]), _q(raw[4]), _q(raw[5]))
                differs = figures != (old.in_flight, old.queued, _q(old.requests_per_second), _q(old.outstanding),
                                      _q(old.outstanding_low), _q(old.outstanding_high))
            idle_moved = abs(load.idle_seconds - (old.idle_seconds + elapsed)) > tolerance
            measured_moved = abs(load.measured_seconds - (old.measured_seconds + measured_step)) > tolerance
            if not (differs or idle_moved or measured_moved):
                continue
            change = compact.models_changed.add(
                position=position, in_flight=raw[0], queued=raw[1], requests_per_second_x100=_q(raw[2]),
                outstanding_x100=_q(raw[3]), outstanding_low_x100=_q(raw[4]), outstanding_high_x100=_q(raw[5]))
            if idle_moved:
                change.idle_deciseconds = _t(load.idle_seconds)
            if measured_moved:
                change.measured_deciseconds = _t(load.measured_seconds)
        compact.models_removed.extend(p for p in range(len(before.models)) if p not in kept)
        return compact
