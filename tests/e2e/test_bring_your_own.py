"""A user's own export, end to end: `fleet package` it, `fleet models register` it, call it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.client import FleetClient
from services.cache.embedded import delete_namespace
from services.local.processes import LocalFleet
from tests.conftest import TEST_KEY, demo_models, write_catalog
from tests.onnx_factory import export_like, ultralytics_metadata

SAMPLE = Path(__file__).resolve().parents[2] / "models" / "samples" / "shapes-1.jpg"


@pytest.fixture(scope="module")
def byo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[LocalFleet, Path]]:
    tmp = tmp_path_factory.mktemp("byo")
    own = tmp / "own"
    own.mkdir()
    catalog = write_catalog(tmp / "catalog.yaml", demo_models()[:1])
    namespace = f"byo-{uuid.uuid4().hex[:10]}"
    local = LocalFleet(redis_url, catalog, workers=1, namespace=namespace, state_dir=tmp / "run",
                       artifact_roots=[own])
    try:
        yield local.start(), own
    finally:
        local.stop()
        delete_namespace(redis_url, namespace)


def cli(fleet: LocalFleet, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLEET_ADDRESS": fleet.gateway.address, "FLEET_ADMIN_TOKEN": fleet.admin_token,
           "XDG_STATE_HOME": str(fleet.state_dir)}
    return subprocess.run([sys.executable, "-m", "fleet.cli.main", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_package_register_and_infer(byo: tuple[LocalFleet, Path]) -> None:
    fleet, own = byo
    export = own / "yolo-like.onnx"
    export.write_bytes(export_like([("output0", "dense", (4 + 2,))],
                                   metadata=ultralytics_metadata("detect", ["apple", "pear"])))
    packaged = cli(fleet, "package", str(export), "--out", str(own / "pkg"))
    assert packaged.returncode == 0, packaged.stderr
    registered = cli(fleet, "models", "register", str(own / "pkg"), "--id", "fruit/1", "--workspace", "demo",
                     "--alias", "fruit")
    assert registered.returncode == 0, registered.stderr
    assert "registered fruit/1 in demo (yolov8, 2 classes" in registered.stdout
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        response = client.infer("fruit", SAMPLE, confidence=0.0, max_detections=5)
    assert response.model_id == "fruit/1" and 1 <= len(response.object_detection.detections) <= 5
    assert {d.class_name for d in response.object_detection.detections} <= {"apple", "pear"}
    again = cli(fleet, "models", "register", str(own / "pkg"), "--id", "fruit/1", "--workspace", "demo")
    assert again.returncode == 1 and ("ALREADY_EXISTS" in again.stderr or "exists" in again.stderr), again.stderr
    missing = cli(fleet, "models", "register", str(own / "nothing"), "--id", "x/1", "--workspace", "demo")
    assert missing.returncode == 2 and "not a model package" in missing.stderr
