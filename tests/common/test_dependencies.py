"""fleet_dependency_up follows a real Redis going away and coming back; each change is logged once."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from services.cache import FleetCache
from services.cache.embedded import EmbeddedRedis
from services.common.dependencies import DependencyMonitor


def up(name: str) -> float | None:
    return REGISTRY.get_sample_value("fleet_dependency_up", {"dependency": name})


async def test_redis_down_and_back(own_redis: EmbeddedRedis, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fleet.dependencies")
    cache = FleetCache.from_url(own_redis.url, timeout_s=0.5, namespace="deps")

    async def never() -> None:
        raise RuntimeError("registry refused")

    monitor = DependencyMonitor({"redis-probe": cache.ping, "other-probe": never}, interval_s=60, timeout_s=1.0)
    try:
        await monitor.check_all()
        assert up("redis-probe") == 1 and up("other-probe") == 0
        own_redis.stop()
        await monitor.check_all()
        await monitor.check_all()
        assert up("redis-probe") == 0
        own_redis.start()
        await monitor.check_all()
        assert up("redis-probe") == 1
    finally:
        await cache.close()
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("dependency other-probe is unavailable: RuntimeError: registry refused") == 1
    assert sum(m.startswith("dependency redis-probe is unavailable: Redis is unavailable") for m in messages) == 1
    assert messages.count("dependency redis-probe is available again") == 1
