"""Detect -> crop -> classify as one worker call (``InferCrops``), on real fleets (registry, workers, gateway as
processes; the demo ONNX models): where one worker holds both models the fused run answers what the steps one by
one answer on the same scenes; where no worker holds both (each worker has room for one model) the run goes step
by step and still answers every crop."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator

import httpx
import pytest

from fleet.client import FleetClient
from services.cache.embedded import delete_namespace
from services.demo.scenes import generate_scene
from services.local.processes import LocalFleet
from tests.conftest import TEST_KEY, demo_models, write_catalog
from tests.e2e.probes import metric
from tests.e2e.test_inference import SEEDS, encode
from tests.e2e.test_workflows import AUTH, run
from tests.workflows.definitions import detect_crop_classify

pytestmark = pytest.mark.slow
FUSED = "fleet_workflow_fused_calls_total"


@pytest.fixture(scope="module")
def scenes() -> list[bytes]:
    return [encode(generate_scene(seed).image) for seed in SEEDS[:4]]


def step_by_step() -> dict:
    """The same chain with its crops also answered: the crops leave the worker, so the chain is not fused."""
    definition = copy.deepcopy(detect_crop_classify())
    definition["outputs"].append({"type": "JsonField", "name": "crops", "selector": "$steps.crop.crops"})
    return definition


def answers(out: dict) -> tuple[list, list]:
    """What must match between runs: boxes, and each crop's class by the index of its detection (ids differ)."""
    detections = out["detections"]["predictions"]
    index = {d["detection_id"]: n for n, d in enumerate(detections)}
    return ([(d["class"], d["x"], d["y"], d["width"], d["height"], round(d["confidence"], 4)) for d in detections],
            [(index[c["parent_id"]], c["top"], round(c["confidence"], 3), c["image"]) for c in out["classes"]])


def test_a_fused_run_answers_as_the_steps_one_by_one(fleet: LocalFleet, scenes: list[bytes]) -> None:
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60, headers=AUTH) as http:
        one_by_one = run(http, step_by_step(), scenes)["outputs"]  # also loads both models on the one worker
        fused_before = metric(fleet.gateway.workflows, FUSED, outcome="fused")
        fused = run(http, detect_crop_classify(), scenes)["outputs"]
        assert metric(fleet.gateway.workflows, FUSED, outcome="fused") == fused_before + len(scenes)
    assert sum(len(o["classes"]) for o in fused) > len(scenes)  # several crops per scene
    for mine, theirs in zip(fused, one_by_one, strict=True):
        assert answers(mine) == answers(theirs)
        assert mine["top"] == [c["top"] for c in mine["classes"]]
        assert "crops" not in mine and len(theirs["crops"]) == len(theirs["classes"])


def test_a_bad_classifier_parameter_fails_the_classifier_step_as_step_by_step(fleet: LocalFleet,
                                                                               scenes: list[bytes]) -> None:
    definition = copy.deepcopy(detect_crop_classify())
    definition["inputs"].append({"type": "WorkflowParameter", "name": "cls_confidence", "default_value": 0.1})
    definition["steps"][2]["confidence"] = "$inputs.cls_confidence"
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60, headers=AUTH) as http:
        assert run(http, definition, scenes[:1])["outputs"][0]["classes"]  # fused, with the parameter's value
        body = run(http, definition, scenes[:1], status=400, cls_confidence="high")
    assert body["status"] == "INVALID_ARGUMENT"
    assert "step 'cls'" in body["message"] and "field 'confidence'" in body["message"], body["message"]


@pytest.fixture(scope="module")
def apart(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LocalFleet]:
    """Two workers with room for one model each: the detector and the classifier never share a worker."""
    tmp = tmp_path_factory.mktemp("apart")
    models = [m for m in demo_models() if m["id"] in ("shapes-det/1", "shapes-cls/1")]
    namespace = f"e2e-apart-{uuid.uuid4().hex[:10]}"
    local = LocalFleet(redis_url, write_catalog(tmp / "catalog.yaml", models), workers=2, namespace=namespace,
                       state_dir=tmp / "run", worker_env={"FLEET_WORKER_MAX_ACTIVE_MODELS": "1"})
    try:
        yield local.start()
    finally:
        local.stop()
        delete_namespace(redis_url, namespace)


def test_with_no_worker_holding_both_models_the_steps_run_one_by_one(apart: LocalFleet, fleet: LocalFleet,
                                                                      scenes: list[bytes]) -> None:
    with httpx.Client(base_url=apart.gateway.http_url, timeout=60, headers=AUTH) as http:
        run(http, detect_crop_classify(), scenes[:1])  # places both models, one on each worker
        fallback_before = metric(apart.gateway.workflows, FUSED, outcome="fallback")
        outputs = run(http, detect_crop_classify(), scenes)["outputs"]
        assert metric(apart.gateway.workflows, FUSED, outcome="fallback") == fallback_before + len(scenes)
        assert metric(apart.gateway.workflows, FUSED, outcome="fused") == 0
    held: dict[str, set[str]] = {}
    for m in _loaded(apart):
        held.setdefault(m.worker_id, set()).add(m.model_id)
    assert held and all(len(models) == 1 for models in held.values())  # no worker holds both
    with httpx.Client(base_url=fleet.gateway.http_url, timeout=60, headers=AUTH) as http:
        reference = run(http, detect_crop_classify(), scenes)["outputs"]  # the one-worker fleet, fused
    for mine, theirs in zip(outputs, reference, strict=True):
        assert answers(mine) == answers(theirs)


def _loaded(fleet: LocalFleet) -> list:
    with FleetClient(fleet.gateway.address, TEST_KEY) as client:
        return list(client.describe_models().models)
