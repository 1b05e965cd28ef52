"""The gateway's view of the model workers: who is up, who holds which model, whom to try.

Candidates for a model are ordered: healthy before cooling-down, workers that already
hold the model (from their Redis heartbeats, or from having just served it) first, then
by rendezvous hashing of the model id, so one model keeps landing on the same worker
instead of being loaded everywhere.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

from services.cache import FleetCache
from services.common.errors import CacheUnavailable
from services.common.periodic import Periodic
from services.common.tls import ClientTls
from services.gateway.metrics import WORKERS
from services.gateway.worker_client import WorkerClient

log = logging.getLogger("fleet.gateway.workers")


@dataclass
class WorkerEndpoint:
    address: str
    client: WorkerClient
    worker_id: str = ""
    holds: set[str] = field(default_factory=set)
    in_flight: int = 0
    unhealthy_until: float = 0.0
    static: bool = False

    def healthy(self, now: float) -> bool:
        return now >= self.unhealthy_until


def _rendezvous(model_id: str, address: str) -> bytes:
    return hashlib.blake2b(f"{model_id}|{address}".encode(), digest_size=8).digest()


class WorkerPool:
    def __init__(self, static_addresses: list[str], max_message_bytes: int, cache: FleetCache | None,
                 discover: bool, cooldown_s: float, refresh_s: float, tls: ClientTls | None = None) -> None:
        self.max_message_bytes, self.cache, self.discover, self.tls = max_message_bytes, cache, discover, tls
        self.cooldown_s = cooldown_s
        self.endpoints: dict[str, WorkerEndpoint] = {}
        for address in static_addresses:
            self._add(address, static=True)
        self._periodic = Periodic("placement-refresh", refresh_s, self._tick)

    def _add(self, address: str, static: bool = False) -> WorkerEndpoint:
        endpoint = self.endpoints.get(address)
        if endpoint is None:
            client = WorkerClient(address, self.max_message_bytes + 1024 * 1024, self.tls)
            endpoint = WorkerEndpoint(address, client, static=static)
            self.endpoints[address] = endpoint
            log.info("worker added", extra={"address": address})
        return endpoint

    def candidates(self, model_id: str) -> list[WorkerEndpoint]:
        now = time.monotonic()
        return sorted(
            self.endpoints.values(),
            key=lambda e: (not e.healthy(now), model_id not in e.holds, _rendezvous(model_id, e.address)),
        )

    def all(self) -> list[WorkerEndpoint]:
        return list(self.endpoints.values())

    def report(self) -> None:
        """fleet_gateway_workers{state}: how many known workers are healthy now."""
        now = time.monotonic()
        healthy = sum(1 for e in self.endpoints.values() if e.healthy(now))
        WORKERS.labels("healthy").set(healthy)
        WORKERS.labels("unhealthy").set(len(self.endpoints) - healthy)

    def mark_failed(self, endpoint: WorkerEndpoint) -> None:
        endpoint.unhealthy_until = time.monotonic() + self.cooldown_s
        endpoint.holds.clear()
        self.report()
        log.warning("worker unavailable; skipping it for a while",
                    extra={"address": endpoint.address, "cooldown_s": self.cooldown_s})

    def note_serving(self, endpoint: WorkerEndpoint, model_id: str) -> None:
        endpoint.unhealthy_until = 0.0
        endpoint.holds.add(model_id)

    def note_unloaded(self, endpoint: WorkerEndpoint, model_id: str) -> None:
        endpoint.holds.discard(model_id)

    async def refresh(self) -> None:
        """Update holdings (and discover workers) from heartbeats; drop workers that stopped beating."""
        if self.cache is None:
            return
        try:
            live = await self.cache.heartbeats.live()
        except CacheUnavailable:
            return
        seen = set()
        for worker_id, state in live.items():
            address = state.get("address")
            if not address:
                continue
            if address not in self.endpoints and not self.discover:
                continue
            endpoint = self._add(address)
            endpoint.worker_id = worker_id
            endpoint.holds = set(state.get("models", []))
            seen.add(address)
        for address, endpoint in list(self.endpoints.items()):
            if address not in seen and not endpoint.static:
                del self.endpoints[address]
                await endpoint.client.close()
                log.info("worker left", extra={"address": address})

    async def _tick(self) -> None:
        try:
            await self.refresh()
        finally:
            self.report()

    def start(self) -> None:
        self._periodic.start()

    async def close(self) -> None:
        await self._periodic.stop()
        for endpoint in self.endpoints.values():
            await endpoint.client.close()
