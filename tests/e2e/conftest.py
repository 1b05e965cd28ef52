"""A real fleet (registry, workers, gateway as processes, real Redis) for end-to-end tests.

``fleet`` is one fleet for the whole tests/e2e package (starting and stopping one costs 10-15 s on CI): a module
that needs other settings, more workers or breaks its fleet (kills, restarts) starts one of its own; one that
needs only another gateway setting starts a gateway of its own on the shared fleet with ``own_gateway``; one that
measures a fresh service (memory, first loads) takes an ``e2e_fleet`` of its own. Modules keep what they store
apart by ids of their own (stored workflows, request ids, images)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fleet.client import FleetClient
from services.local.processes import LocalFleet, ServiceProcess
from services.cache.embedded import delete_namespace
from tests.conftest import TEST_KEY, demo_models, write_catalog


@contextmanager
def e2e_fleet(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalFleet]:
    """Registry, one worker and a gateway on the demo models, in a Redis namespace of its own."""
    tmp = tmp_path_factory.mktemp("fleet")
    catalog = write_catalog(tmp / "catalog.yaml", demo_models())
    namespace = f"e2e-{uuid.uuid4().hex[:10]}"
    local = LocalFleet(redis_url, catalog, workers=1, namespace=namespace, state_dir=tmp / "run",
                       env={"FLEET_WORKER_MAX_IMAGE_PIXELS": "30000000",
                            "FLEET_GATEWAY_MAX_MESSAGE_BYTES": str(4 * 1024 * 1024)})
    try:
        yield local.start()
    finally:
        local.stop()
        delete_namespace(redis_url, namespace)


@pytest.fixture(scope="package")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalFleet]:
    with e2e_fleet(tmp_path_factory, redis_url) as local:
        yield local


@pytest.fixture
def client(fleet: LocalFleet) -> Iterator[FleetClient]:
    with FleetClient(fleet.gateway.address, TEST_KEY, max_message_bytes=64 * 1024 * 1024) as c:
        yield c


@contextmanager
def own_gateway(fleet: LocalFleet, env: dict[str, str]) -> Iterator[ServiceProcess]:
    """One more gateway on ``fleet`` (its registry, its workers) with ``env`` over the fleet's settings; it is
    stopped and forgotten afterwards, with its workflow engine (the fleet's own ``gateway`` stays the first one)."""
    taken = {p.name for p in fleet.processes}
    index = next(i for i in itertools.count(1) if f"gateway-{i}" not in taken)
    gateway = fleet.start_gateway(fleet.worker_processes, index, extra=env)
    try:
        gateway.wait_ready(fleet.ready_timeout_s)
        yield gateway
    finally:
        for process in (gateway, *([gateway.engine] if gateway.engine else [])):
            process.terminate()
            fleet.processes.remove(process)
