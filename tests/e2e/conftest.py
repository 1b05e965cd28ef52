"""A real fleet (registry, workers, gateway as processes, real Redis) for end-to-end tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from fleet.client import FleetClient
from services.local.processes import LocalFleet
from services.cache.embedded import delete_namespace
from tests.conftest import TEST_KEY, demo_models, write_catalog


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalFleet]:
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


@pytest.fixture
def client(fleet: LocalFleet) -> Iterator[FleetClient]:
    with FleetClient(fleet.gateway.address, TEST_KEY, max_message_bytes=64 * 1024 * 1024) as c:
        yield c
