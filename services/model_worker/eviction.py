"""Which held model a worker evicts when it is over its count or memory limit: a plain policy, no I/O.

The model manager tells the policy what it loads, uses and drops, and asks it for a victim among the models
it may evict (the caller skips pinned models and the one just loaded); the fleet simulator
(``bench/fleet_sim``) drives the same classes.

- ``lru``: the least recently used model.
- ``gdsf`` (Greedy-Dual-Size-Frequency): each model's priority is ``clock + uses × load cost / size``, set
  when it is loaded and on each use; the victim is the lowest priority (the least recently used among
  equals), and the clock rises to the victim's priority, so a model used often keeps its place while one
  used once gives way, a small model that is slow to load per byte is kept before a large one, and
  popularity from long ago ages out (new uses start from the risen clock). The uses of the last
  ``history`` models evicted are remembered, so a popular model evicted once (by a burst of others, or
  before its uses added up) comes back with them rather than from one.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

EvictionKind = Literal["gdsf", "lru"]
KINDS: tuple[EvictionKind, ...] = ("gdsf", "lru")


@dataclass
class _Entry:
    size: int
    cost: float
    uses: int = 1
    priority: float = 0.0
    used: int = 0  # the policy's use counter at the last use: the tie-break (least recently used first)


class Eviction:
    """An eviction policy over model keys (``lru``: every priority stays 0, so the least recently used goes)."""

    def __init__(self, kind: EvictionKind = "gdsf", history: int = 256) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown eviction policy {kind!r} (one of {', '.join(KINDS)})")
        self.kind = kind
        self.clock = 0.0
        self._ticks = 0
        self._entries: dict[str, _Entry] = {}
        self._history: OrderedDict[str, int] = OrderedDict()  # evicted key -> its uses, oldest first
        self._history_size = history if kind == "gdsf" else 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def loaded(self, key: str, size: int, cost: float) -> None:
        """``key`` was loaded (or replaced): ``size`` bytes, ``cost`` seconds to load it again."""
        uses = self._history.pop(key, 0) + 1
        self._entries[key] = entry = _Entry(max(1, size), max(0.0, cost), uses)
        self._touch(entry)

    def used(self, key: str) -> None:
        """A request used ``key`` (unknown keys are ignored)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.uses += 1
            self._touch(entry)

    def priority(self, key: str) -> float:
        return self._entries[key].priority

    def victim(self, skip: Callable[[str], bool] = lambda key: False) -> str | None:
        """The key to evict next among those ``skip`` does not exclude (None: none left)."""
        best: tuple[float, int] | None = None
        found = None
        for key, entry in self._entries.items():
            rank = (entry.priority, entry.used)
            if (best is None or rank < best) and not skip(key):
                best, found = rank, key
        return found

    def evicted(self, key: str) -> None:
        """``key`` was evicted: the clock rises to its priority (ageing what stays), and it is forgotten."""
        entry = self._entries.pop(key, None)
        if entry is not None and self.kind == "gdsf":
            self.clock = max(self.clock, entry.priority)
            if self._history_size:
                self._history[key] = entry.uses
                while len(self._history) > self._history_size:
                    self._history.popitem(last=False)

    def forget(self, key: str) -> None:
        """``key`` went for another reason (unloaded, replaced): the clock stays."""
        self._entries.pop(key, None)

    def _touch(self, entry: _Entry) -> None:
        self._ticks += 1
        entry.used = self._ticks
        entry.priority = self.clock + (entry.uses * entry.cost / entry.size if self.kind == "gdsf" else 0.0)
