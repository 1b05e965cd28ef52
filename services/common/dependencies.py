"""Whether a service's dependencies answer: ``fleet_dependency_up{dependency}``, checked periodically.

Each service names the checks it depends on (``redis``, ``registry``...) in its ``Service``; the
runner checks them once before start-up and then every ``dependency_check_interval_s``, so the
alerts on a dependency being down fire even while no request needs it. A change of state is
logged once (down with its reason, and back up), not on every check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from services.common.metrics import DEPENDENCY_UP
from services.common.periodic import Periodic

log = logging.getLogger("fleet.dependencies")

Check = Callable[[], Awaitable[object]]  # raises (or times out) when the dependency is unavailable


class DependencyMonitor:
    def __init__(self, checks: dict[str, Check], interval_s: float, timeout_s: float) -> None:
        self.checks, self.timeout_s = checks, timeout_s
        self.up: dict[str, bool] = {}
        self._periodic = Periodic("dependency-checks", interval_s, self.check_all)

    async def check_all(self) -> None:
        results = await asyncio.gather(*(self._check(name, check) for name, check in self.checks.items()))
        for name, (up, reason) in zip(self.checks, results):
            DEPENDENCY_UP.labels(name).set(1 if up else 0)
            before = self.up.get(name)
            self.up[name] = up
            if up and before is False:
                log.info("dependency %s is available again", name, extra={"dependency": name})
            elif not up and before is not False:
                log.warning("dependency %s is unavailable: %s", name, reason, extra={"dependency": name})

    async def _check(self, name: str, check: Check) -> tuple[bool, str]:
        try:
            await asyncio.wait_for(check(), self.timeout_s)
        except TimeoutError:
            return False, f"no answer within {self.timeout_s:g}s"
        except Exception as exc:  # noqa: BLE001 - any failure means "down"; the reason is logged
            return False, getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"[:300]
        return True, ""

    async def start(self) -> None:
        if self.checks:
            await self.check_all()
            self._periodic.start()

    async def stop(self) -> None:
        if self.checks:
            await self._periodic.stop()
