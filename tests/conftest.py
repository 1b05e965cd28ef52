"""Shared fixtures: a real Redis (the machine's on 6379, else an embedded one), namespaces, catalogs."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from fleet.paths import MODELS_DIR
from services.cache import FleetCache
from fleet.keys import hash_api_key
from services.cache.embedded import EmbeddedRedis, delete_namespace, machine_or_embedded
from tests.secrets_scan import find_secrets

PACKAGES = MODELS_DIR / "packages"
TEST_KEY = "fk_test_demo_key"
OTHER_KEY = "fk_test_other_key"


@pytest.fixture(scope="session", autouse=True)
def workers_stop_without_a_drain_notice() -> Iterator[None]:
    """Fleets the tests start inherit this environment: their workers stop at once on SIGTERM (the notice,
    3 s by default, lets other gateways move away; it cost each fleet's teardown 3 of its 5 s). Tests of
    draining give their workers a notice of their own."""
    with pytest.MonkeyPatch.context() as mp:
        if "FLEET_WORKER_DRAIN_NOTICE_S" not in os.environ:
            mp.setenv("FLEET_WORKER_DRAIN_NOTICE_S", "0")
        yield


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_service_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole run: no log a service wrote (LocalFleet logs under the run's temp dir) holds a raw key."""
    yield
    root = tmp_path_factory.getbasetemp()
    logs = list(root.rglob("*.log"))
    leaks = find_secrets(root, [TEST_KEY, OTHER_KEY])
    print(f"\nsecrets check: {len(logs)} service logs scanned, {len(leaks)} leaks")
    assert not leaks, "raw API keys in service logs:\n" + "\n".join(leaks)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The machine's Redis on 127.0.0.1:6379 when it answers, else one started for the session."""
    with machine_or_embedded() as url:
        yield url


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own, on a free port, which the test may stop and restart."""
    server = EmbeddedRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A Redis key namespace unique to this test; its keys are deleted afterwards."""
    ns = f"test-{uuid.uuid4().hex[:12]}"
    yield ns
    delete_namespace(redis_url, ns)


@pytest.fixture
async def cache(redis_url: str, namespace: str) -> AsyncIterator[FleetCache]:
    fc = FleetCache.from_url(redis_url, namespace=namespace)
    yield fc
    await fc.close()


def write_catalog(path: Path, models: list[dict], workspaces: dict[str, list[str]] | None = None) -> Path:
    """A catalog YAML with the given models; workspaces map a name to its API keys (hashed here)."""
    workspaces = workspaces or {"demo": [TEST_KEY], "other": [OTHER_KEY]}
    data = {
        "workspaces": [{"name": w, "api_key_sha256": [hash_api_key(k) for k in keys]} for w, keys in workspaces.items()],
        "models": models,
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def demo_models() -> list[dict]:
    """Catalog entries for the committed demo packages (ids '<package>/1')."""
    aliases = {"shapes-det": ["shapes-detector"], "shapes-seg": ["shapes-segmenter"],
               "shapes-cls": ["shapes-classifier"], "shapes-det-v5": [], "shapes-pose": ["shapes-corners"],
               "shapes-obb": ["shapes-rotated"], "shapes-clip": ["clip"], "shapes-sam": ["sam2"], "pp-ocr": ["pp-ocr"]}
    return [
        {"id": f"{name}/1", "workspace": "demo", "package": str(PACKAGES / name), "public": False,
         "aliases": alias}
        for name, alias in aliases.items() if (PACKAGES / name / "model.json").exists()
    ]


@pytest.fixture
def demo_catalog(tmp_path: Path) -> Path:
    models = demo_models()
    if not models:
        pytest.fail(f"no demo model packages under {PACKAGES}")
    return write_catalog(tmp_path / "catalog.yaml", models)
