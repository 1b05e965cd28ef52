"""Every overlay renders, passes strict schema validation (kubernetes-validate) and checkov."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError

from tests.deploy.host import REPO_ROOT, tool_venv
from tests.deploy.manifests import OVERLAYS, Manifests, component, container_env, pod_spec, render

# The oldest Kubernetes the manifests target (native preStop sleep is on by default from 1.30)
# and the newest schema kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# Custom resources: no schema in kubernetes-validate, so skipped by name (and nothing else is).
CRD_KINDS = {"PodMonitor": "monitoring.coreos.com/v1", "PrometheusRule": "monitoring.coreos.com/v1",
             "Certificate": "cert-manager.io/v1",
             "Issuer": "cert-manager.io/v1"}
CHECKOV = "checkov==3.3.30"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_overlay_is_valid_kubernetes(overlay: str, version: str) -> None:
    docs = render(overlay)
    assert docs, f"{overlay} renders nothing"
    for doc in docs:
        where = f"{overlay}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CRD_KINDS:
            assert doc["apiVersion"] == CRD_KINDS[doc["kind"]], where
            with pytest.raises(SchemaNotFoundError):
                kubernetes_validate.validate(doc, version, strict=True)
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{where} is invalid for Kubernetes {version}: {exc.message}") from None


def test_strict_validation_would_catch_a_misspelt_field() -> None:
    deployment = copy.deepcopy(Manifests(render("dev")).get("Deployment", "fleet-worker"))
    pod_spec(deployment)["containers"][0]["livenesProbe"] = {"grpc": {"port": 50053}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_overlays_differ_as_documented() -> None:
    cpu, gpu, dev = (Manifests(render(o)) for o in ("cpu", "gpu", "dev"))
    for m in (cpu, gpu):
        assert {h["metadata"]["name"] for h in m.of_kind("HorizontalPodAutoscaler")} == {"fleet-gateway",
                                                                                          "fleet-worker"}
        assert {component(w): w["spec"]["replicas"] >= 2 for w in m.fleet_workloads()} == {
            "gateway": True, "workflows": True, "registry": True, "worker": True, "pipelines": True}
        assert m.of_kind("PodMonitor")
        assert [s["metadata"]["name"] for s in m.of_kind("StatefulSet")] == ["fleet-redis"]
    assert not dev.of_kind("HorizontalPodAutoscaler")
    assert {w["metadata"]["name"]: w["spec"]["replicas"] for w in dev.workloads()} == {
        "fleet-gateway": 1, "fleet-workflows": 1, "fleet-registry": 1, "fleet-worker": 1, "fleet-pipelines": 1,
        "fleet-redis": 1,
        "fleet-postgres": 1}
    worker = pod_spec(gpu.get("Deployment", "fleet-worker"))
    assert worker["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in worker["tolerations"])
    assert worker["containers"][0]["image"].endswith("-gpu")
    assert container_env(gpu, worker["containers"][0])["FLEET_WORKER_EXECUTION_PROVIDER"] == "cuda"
    tls = Manifests(render("cert-manager"))
    secrets = {c["spec"]["secretName"] for c in tls.of_kind("Certificate")}
    for workload in tls.fleet_workloads():
        spec = pod_spec(workload)
        volumes = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        container = spec["containers"][0]
        mounts = {m["mountPath"]: volumes.get(m["name"]) for m in container["volumeMounts"]}
        env = container_env(tls, container)
        files = {k: v for k, v in env.items() if "TLS_" in k and k != "FLEET_TLS_SERVER_NAME"}
        assert any(k.endswith("_TLS_CERT") and not k.startswith("FLEET_TLS") for k in files), workload["metadata"]
        for name, path in files.items():  # every TLS file lies in a mounted certificate of cert-manager's
            folder = path.rsplit("/", 1)[0]
            assert mounts.get(folder) in secrets, (workload["metadata"]["name"], name, path)


@pytest.mark.parametrize(("overlay", "discovery"), [("cpu", "dns"), ("gpu", "dns"), ("dev", "heartbeats"),
                                                    ("cert-manager", "dns")])
def test_each_overlay_names_how_gateways_find_workers(overlay: str, discovery: str) -> None:
    m = Manifests(render(overlay))
    gateway = pod_spec(m.get("Deployment", "fleet-gateway"))["containers"][0]
    env = container_env(m, gateway)
    assert env["FLEET_GATEWAY_DISCOVERY"] == discovery
    if discovery == "dns":  # the name is the workers' headless Service, at its gRPC port
        host, _, port = env["FLEET_GATEWAY_WORKERS_DNS"].rpartition(":")
        service = m.get("Service", host.split(".")[0])
        assert service["spec"]["clusterIP"] == "None" and not service["spec"].get("publishNotReadyAddresses")
        assert service["spec"]["selector"]["app.kubernetes.io/component"] == "worker"
        assert int(port) in {p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"}
    else:
        assert "FLEET_GATEWAY_WORKERS_DNS" not in env


def test_every_namespaced_object_lands_in_the_fleet_namespace() -> None:
    for overlay in OVERLAYS:
        for doc in render(overlay):
            if doc["kind"] != "Namespace":
                assert doc["metadata"].get("namespace") == "inference-fleet", f"{overlay}: {doc['kind']}"


@pytest.mark.slow
def test_checkov_finds_nothing_that_is_not_skipped_with_a_reason(tmp_path: Path) -> None:
    """checkov (in a venv of its own) on every rendered overlay and on the Dockerfile."""
    checkov = tool_venv("checkov", CHECKOV, "checkov")
    for overlay in OVERLAYS:
        done = subprocess.run(["kubectl", "kustomize", str(REPO_ROOT / "deploy/k8s/overlays" / overlay)],
                              capture_output=True, text=True, check=True)
        (tmp_path / f"{overlay}.yaml").write_text(done.stdout)
    (tmp_path / "Dockerfile").write_text((REPO_ROOT / "deploy" / "Dockerfile").read_text())
    done = subprocess.run(
        [str(checkov), "-d", str(tmp_path), "--framework", "kubernetes", "dockerfile", "--skip-download",
         "--output", "json"],
        capture_output=True, text=True, timeout=600,
    )
    reports = json.loads(done.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {r["check_type"] for r in reports} == {"kubernetes", "dockerfile"}, done.stderr[-2000:]
    failed, unexplained = [], []
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["check_type"]
        assert report["summary"]["passed"] > 0, report["check_type"]
        results = report["results"]
        failed += [f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in results["failed_checks"]]
        for check in results["skipped_checks"]:
            reason = (check.get("check_result") or {}).get("suppress_comment") or ""
            if len(re.sub(r"\W", "", reason)) < 20:
                unexplained.append(f"{check['check_id']} on {check['resource']}: {reason!r}")
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert not unexplained, "skipped without a written reason:\n" + "\n".join(unexplained)
