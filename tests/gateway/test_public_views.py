"""What the gateway core shows a caller of the fleet's state: their own, or aggregate; admins everything."""

from __future__ import annotations

from pathlib import Path

from services.gateway.caller import Caller
from services.gateway.copies import CopyController
from services.gateway.gateway import Gateway
from services.gateway.placement import CopyPolicy
from services.gateway.discovery import StaticDiscovery
from services.gateway.workers import WorkerPool
from tests.model_worker.test_service import start_worker


async def test_worker_addresses_are_shown_to_admins_only(tmp_path: Path, redis_url: str, namespace: str) -> None:
    harness = await start_worker(tmp_path, redis_url, namespace)
    address = f"127.0.0.1:{harness.runner.port}"
    pool = WorkerPool(StaticDiscovery([address]), 1 << 20, 2.0, 1.0)
    copies = CopyController(pool, None, None, CopyPolicy(), 1.0, 1.0)  # type: ignore[arg-type] - no resolver needed
    gateway = Gateway(None, pool, None, 1, 5.0, 0, copies)  # type: ignore[arg-type] - server info needs neither
    try:
        [caller_view] = await gateway.server_info(Caller(workspace="demo"))
        [admin_view] = await gateway.server_info(Caller(workspace="demo", admin=True))
    finally:
        await pool.close()
        await harness.runner.stop()
    assert caller_view.worker_id == admin_view.worker_id == "w-test"
    assert caller_view.address == "" and admin_view.address == address
    assert caller_view.max_models == admin_view.max_models  # the aggregate figures stay
