"""Per-model locks for the model manager: one ``asyncio.Lock`` per model id, acquired within a timeout, kept only
while someone holds or waits for it (so the table does not grow with every model ever asked for)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from services.common.errors import Unavailable


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class ModelLocks:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._entries: dict[str, _Entry] = {}

    def hold(self, model_id: str) -> _TimedLock:
        """``async with locks.hold(model_id)``: that model's lock; Unavailable when not acquired in time."""
        entry = self._entries.get(model_id)
        if entry is None:
            entry = self._entries[model_id] = _Entry()
        return _TimedLock(self, model_id, entry)

    def waiting(self, model_id: str) -> int:
        """Callers holding or waiting for that model's lock now (requests waiting for its load, with the load's)."""
        entry = self._entries.get(model_id)
        return entry.users if entry is not None else 0

    def __len__(self) -> int:
        """Model ids whose lock someone holds or waits for."""
        return len(self._entries)


class _TimedLock:
    """``async with``: a model's lock, acquired within the locks' timeout."""

    def __init__(self, locks: ModelLocks, model_id: str, entry: _Entry) -> None:
        self.locks, self.model_id, self._entry = locks, model_id, entry

    async def __aenter__(self) -> None:
        self._entry.users += 1
        try:
            await asyncio.wait_for(self._entry.lock.acquire(), self.locks.timeout_s)
        except TimeoutError:
            self._leave()
            raise Unavailable(
                f"model {self.model_id!r} is still being loaded by another request after "
                f"{self.locks.timeout_s:.0f}s; retry later"
            ) from None
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._entry.lock.release()
        self._leave()

    def _leave(self) -> None:
        self._entry.users -= 1
        if self._entry.users == 0:
            self.locks._entries.pop(self.model_id, None)
