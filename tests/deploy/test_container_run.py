"""The real thing: build the image, run the dev overlay's pods in containers, serve, drain.

Slow (kept in CI). Installs podman, runc and debootstrap with apt-get when they are missing;
skips, saying why, only when this machine cannot run containers. The debootstrap tarball and the
wheelhouse are cached under build/deploy-test (keyed by their inputs); containers, images,
networks and podman's storage are removed afterwards, also when a test fails.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx
import pytest
import yaml

from fleet.client import FleetClient
from fleet.keys import hash_api_key
from services.cache.embedded import free_port
from services.common.server import LIVENESS_SERVICE
from tests.deploy import images
from tests.deploy.host import REPO_ROOT, apt_install, say
from tests.deploy.manifests import Manifests, render_dir
from tests.deploy.pods import GRPC_PROBE, Cluster, Pod, quantity

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

SAMPLE = REPO_ROOT / "models" / "samples" / "shapes-1.jpg"
IMAGE = "inference-fleet:{version}-cpu"
# The dev overlay's Redis image, played here by the Debian base (its redis-server 7.0).
REDIS_IMAGE = "docker.io/library/redis:7.2.5-bookworm"
# Workloads of the dev overlay this test does not run, and why.
NOT_RUN = {"fleet-postgres": "no PostgreSQL image can be had without a registry: the registry keeps its database "
                             "in SQLite on its pod's /tmp volume here (one replica), migrated by its init container"}
REGISTRY_DATABASE = "sqlite:////tmp/registry.db"


@dataclass
class Fleet:
    cluster: Cluster
    gateway_address: str
    http_url: str
    api_key: str
    admin_token: str
    image: str
    timings: dict[str, float] = field(default_factory=dict)
    pipelines_address: str = ""  # the pipelines replica's gRPC and HTTP ports, published on the host
    pipelines_http_url: str = ""

    def client(self) -> FleetClient:
        return FleetClient(self.gateway_address, self.api_key)

    def pods(self, prefix: str) -> list[Pod]:
        return [p for p in self.cluster.pods if p.name.startswith(prefix)]


def _dev_overlay_with_key(folder: Path, api_key: str, admin_token: str) -> Manifests:
    """The dev overlay, with the test's API-key hash added the way docs/deploy.md tells users to, and
    the registry's database in SQLite (see NOT_RUN)."""
    catalog = yaml.safe_load((REPO_ROOT / "deploy/k8s/base/config/catalog.yaml").read_text())
    catalog["workspaces"][0]["api_key_sha256"] = [hash_api_key(api_key)]
    (folder / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(REPO_ROOT / "deploy/k8s/overlays/dev", folder)],
        "configMapGenerator": [{"name": "fleet-catalog", "behavior": "replace", "files": ["catalog.yaml"]}],
        "secretGenerator": [{"name": "fleet-registry-database", "behavior": "replace",
                             "literals": [f"url={REGISTRY_DATABASE}"]},
                            # The optional admin Secret, as an operator creates it (docs/deploy.md).
                            # (a fixed name: references from the base are not rewritten to a suffixed one).
                            {"name": "fleet-admin", "literals": [f"token-sha256={hash_api_key(admin_token)}"],
                             "options": {"disableNameSuffixHash": True}}],
    }))
    return Manifests(render_dir(folder))


def _free_subnets(count: int) -> list[str]:
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    free = [f"10.231.{third}" for third in range(200 + os.getpid() % 50, 256) if f"10.231.{third}." not in used]
    if len(free) < count:
        raise RuntimeError("no free 10.231.x.0/24 subnets")
    return free[:count]


def _machine_reason() -> str | None:
    if os.geteuid() != 0:
        return "the container test needs root (debootstrap, rootful podman)"
    return apt_install(images.HOST_PACKAGES)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    reason = _machine_reason()
    if reason:
        pytest.skip(reason)
    mirror = images.debian_mirror()
    if mirror is None:
        pytest.skip("no Debian 12 (bookworm) mirror in this machine's apt sources for debootstrap")
    state = Path(tempfile.mkdtemp(prefix="fleet-podman-", dir="/var/tmp"))
    podman = images.Podman(state)
    timings: dict[str, float] = {}
    try:
        why = podman.works()
        if why:
            pytest.skip(f"podman cannot run here: {why}")
        t = time.monotonic()
        rootfs = images.debian_rootfs(mirror)
        timings["base rootfs"] = time.monotonic() - t
        t = time.monotonic()
        wheels = images.wheelhouse("cpu", rootfs.python_version, rootfs.glibc)
        timings["wheelhouse"] = time.monotonic() - t
        t = time.monotonic()
        base = images.import_base(podman, rootfs)
        version = images.tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
        say("building the image (podman build --network=none)")
        images.build_image(podman, base, wheels, IMAGE.format(version=version))
        podman("tag", base, REDIS_IMAGE)
        timings["image build"] = time.monotonic() - t

        api_key = f"fk_container_{uuid.uuid4().hex[:16]}"
        overlay_dir = state / "overlay"
        overlay_dir.mkdir()
        admin_token = f"fa_container_{uuid.uuid4().hex}"
        manifests = _dev_overlay_with_key(overlay_dir, api_key, admin_token)
        names = {w["metadata"]["name"] for w in manifests.workloads()}
        assert names - set(NOT_RUN) == {"fleet-redis", "fleet-registry", "fleet-worker", "fleet-workflows",
                                        "fleet-gateway", "fleet-pipelines"}
        pods_net, edge_net = _free_subnets(2)
        cluster = Cluster(podman, manifests, state, pods_net, network=f"fleet-test-{os.getpid()}",
                          edge_subnet=edge_net, edge_network=f"fleet-test-edge-{os.getpid()}")
        cluster.create_network()
        port, http_port, pipelines_port, pipelines_http = free_port(), free_port(), free_port(), free_port()
        t = time.monotonic()
        # In dependency order, each ready (by its own probes) before the next starts.
        for workload, replicas, publish in (("fleet-redis", None, None), ("fleet-registry", None, None),
                                            ("fleet-worker", 2, None), ("fleet-workflows", None, None),
                                            ("fleet-gateway", None, {"grpc": port, "http": http_port}),
                                            ("fleet-pipelines", 1, {"grpc": pipelines_port, "http": pipelines_http})):
            for pod in cluster.start(workload, replicas, publish):
                timings[f"ready {pod.name}"] = cluster.wait_ready(pod, 180)
        timings["all pods ready"] = time.monotonic() - t
        fleet = Fleet(cluster, f"127.0.0.1:{port}", f"http://127.0.0.1:{http_port}", api_key, admin_token,
                      IMAGE.format(version=version), timings, f"127.0.0.1:{pipelines_port}",
                      f"http://127.0.0.1:{pipelines_http}")
        yield fleet
    finally:
        say("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
        podman.reset()


def test_an_inference_through_the_gateway_from_the_host(fleet: Fleet) -> None:
    with fleet.client() as client:
        response = client.infer("shapes-det/1", SAMPLE, timeout=60)
        detections = response.object_detection.detections
        assert len(detections) >= 3 and {d.class_name for d in detections} <= {"circle", "rectangle", "triangle"}
        assert response.worker_id in {p.name for p in fleet.pods("fleet-worker")}
        classified = client.infer("shapes-classifier", SAMPLE, timeout=60)
        assert classified.classification.top_class in {"circle", "rectangle", "triangle"}
        with pytest.raises(grpc.RpcError) as err:
            FleetClient(fleet.gateway_address, "fk_not_a_key").infer("shapes-det/1", SAMPLE, timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The HTTP front door on its own port (FLEET_GATEWAY_HTTP_PORT), published like the gRPC one.
    assert httpx.get(f"{fleet.http_url}/v2/health/ready", timeout=10).status_code == 200
    answer = httpx.post(f"{fleet.http_url}/infer/object_detection", timeout=60, json={
        "model_id": "shapes-det/1", "api_key": fleet.api_key,
        "image": {"type": "base64", "value": base64.b64encode(SAMPLE.read_bytes()).decode()}})
    assert answer.status_code == 200, answer.text[:500]
    assert len(answer.json()["predictions"]) == len(detections)


def test_a_workflow_with_image_work_runs_in_the_workflows_pod(fleet: Fleet) -> None:
    """The gateway's pod passes a workflow that draws on its image to the fleet-workflows pod (its Service, the
    network policy letting gateways in) and answers what the engine drew."""
    definition = {"version": "1.0", "inputs": [{"type": "WorkflowImage", "name": "image"}],
                  "steps": [{"type": "roboflow_core/roboflow_object_detection_model@v1", "name": "det",
                             "images": "$inputs.image", "model_id": "shapes-det/1"},
                            {"type": "roboflow_core/bounding_box_visualization@v1", "name": "viz",
                             "image": "$inputs.image", "predictions": "$steps.det.predictions"}],
                  "outputs": [{"type": "JsonField", "name": "p", "selector": "$steps.det.predictions"},
                              {"type": "JsonField", "name": "drawn", "selector": "$steps.viz.image"}]}
    flow = httpx.post(f"{fleet.http_url}/workflows/run", timeout=120, json={
        "api_key": fleet.api_key, "specification": definition,
        "inputs": {"image": {"type": "base64", "value": base64.b64encode(SAMPLE.read_bytes()).decode()}}})
    assert flow.status_code == 200, flow.text[:500]
    output = flow.json()["outputs"][0]
    assert output["p"]["predictions"] and output["drawn"]["type"] == "base64"
    assert base64.b64decode(output["drawn"]["value"])[:2] == b"\xff\xd8"  # a JPEG


def test_a_pipelines_pod_runs_pushed_frames_through_the_gateway_and_workers(fleet: Fleet) -> None:
    """The pipelines replica as a pod of its own: a pipeline on a pushed source, each frame through the gateway's
    pod to a worker's, its results consumed over the stream manager's HTTP route."""
    from fleet.v1 import pipelines_pb2, pipelines_pb2_grpc  # noqa: PLC0415
    from tests.pipelines.client import detections_of  # noqa: PLC0415

    metadata = (("authorization", f"Bearer {fleet.api_key}"),)
    with grpc.insecure_channel(fleet.pipelines_address) as channel:
        service = pipelines_pb2_grpc.PipelineServiceStub(channel)
        info = service.CreatePipeline(pipelines_pb2.CreatePipelineRequest(
            model_id="shapes-det/1", max_fps=30, sources=[pipelines_pb2.VideoSource(reference="push://camera")]),
            metadata=metadata, timeout=60).pipeline
        try:
            def state() -> tuple[str, int]:
                pipeline = service.GetPipeline(pipelines_pb2.GetPipelineRequest(pipeline_id=info.pipeline_id),
                                               metadata=metadata, timeout=10).pipeline
                frames = (json.loads(pipeline.report_json) if pipeline.report_json else {}).get("frames", {})
                return pipeline.state, int(frames.get("processed", 0))

            def wait(done, what: str) -> None:  # noqa: ANN001
                deadline = time.monotonic() + 60
                while not done(*state()):
                    assert time.monotonic() < deadline, f"{what}: not within 60 s"
                    time.sleep(0.2)

            wait(lambda s, _: s not in ("", "pending"), "the pipeline taken by the replica")

            def pushes():  # noqa: ANN202 - one frame at a time: a pushed source is live (latest frame wins)
                for i in range(3):
                    yield pipelines_pb2.PushFramesRequest(pipeline_id=info.pipeline_id, source_id="0",
                                                          image=SAMPLE.read_bytes(), captured_at=time.time())
                    wait(lambda _, processed, i=i: processed > i, f"pushed frame {i} processed")

            acks = [a.frame_id for a in service.PushFrames(pushes(), metadata=metadata, timeout=240)]
            assert acks == [0, 1, 2]
            reply = httpx.request("GET", f"{fleet.pipelines_http_url}/inference_pipelines/{info.pipeline_id}/consume",
                                  headers={"Authorization": f"Bearer {fleet.api_key}"}, json={"count": 10},
                                  timeout=30).json()
            found = [detections_of(o) for o in reply["outputs"]]
            assert len(found) == 3 and all(len(d) >= 3 for d in found), reply
        finally:
            service.TerminatePipeline(pipelines_pb2.TerminatePipelineRequest(pipeline_id=info.pipeline_id),
                                      metadata=metadata, timeout=60)


def test_workers_are_found_by_their_pod_ips_and_sized_by_their_limits(fleet: Fleet) -> None:
    workers = {p.name: p for p in fleet.pods("fleet-worker")}
    deadline = time.monotonic() + 30
    while True:
        # Internal addresses are shown to the admin only (the admin plane is on: the fleet-admin Secret).
        with FleetClient(fleet.gateway_address, fleet.admin_token) as admin:
            seen = {w.worker_id: w for w in admin.server_info().workers}
        if set(seen) >= set(workers) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert set(seen) == set(workers)
    with fleet.client() as client:
        assert all(not w.address for w in client.server_info().workers), "a workspace key sees no addresses"
    for name, pod in workers.items():
        assert seen[name].address == f"{pod.ip}:{pod.env['FLEET_WORKER_PORT']}"
        limit = int(quantity(pod.container["resources"]["limits"]["memory"]))
        assert seen[name].capacity_bytes == limit // 2  # half the container's limit, not of the node's memory


def test_probes_mean_what_the_manifests_say(fleet: Fleet) -> None:
    for pod in fleet.cluster.pods:
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            if kind in pod.container:
                ok, out = fleet.cluster.probe(pod, kind)
                assert ok, f"{pod.name} {kind}: {out}"
    gateway = fleet.pods("fleet-gateway")[0]
    assert gateway.container["livenessProbe"]["grpc"]["service"] == LIVENESS_SERVICE
    worker = fleet.pods("fleet-worker")[0]
    # FLEET_WORKER_PRELOAD: the model was loaded before the worker reported ready (the startup probe's wait).
    lines = fleet.cluster.logs(worker).splitlines()
    loaded = next(i for i, line in enumerate(lines) if "model loaded" in line and "shapes-det/1" in line)
    ready = next(i for i, line in enumerate(lines) if "worker ready" in line)
    assert loaded < ready


def test_containers_are_non_root_with_a_read_only_root(fleet: Fleet) -> None:
    for pod in fleet.cluster.pods:
        code, uid = fleet.cluster.exec(pod, "id", "-u")
        assert (code, uid) == (0, "10001"), pod.name
        code, out = fleet.cluster.exec(pod, "touch", "/opt/written")
        assert code != 0 and "Read-only file system" in out, pod.name
        for mount in pod.container.get("volumeMounts", []):
            if not mount.get("readOnly"):
                code, out = fleet.cluster.exec(pod, "touch", f"{mount['mountPath']}/written")
                assert code == 0, f"{pod.name}: {mount['mountPath']} must be writable: {out}"
        code, caps = fleet.cluster.exec(pod, "grep", "CapEff", "/proc/self/status")
        assert caps.split()[-1] == "0000000000000000", f"{pod.name} keeps capabilities: {caps}"


REACH = """
import socket, sys
for target in sys.argv[1:]:
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host, int(port)), 2).close()
        print(target, "open")
    except OSError:
        print(target, "closed")
"""


def test_from_a_client_namespace_only_the_gateway_answers(fleet: Fleet) -> None:
    """The NetworkPolicies' intent: from outside the fleet, the gateway serves, and the pipelines replicas'
    gRPC and HTTP (cameras' frames and the stream manager's routes); nothing else is reachable."""
    inside = [p for p in fleet.cluster.pods if not p.name.startswith("fleet-gateway")]
    expected = {"fleet-gateway:50051": "open", "fleet-gateway:9001": "open",
                "fleet-pipelines:50060": "open", "fleet-pipelines:9002": "open"}
    expected |= {f"{p.ip}:{port['containerPort']}": "closed" for p in inside for port in p.container["ports"]}
    code, out = fleet.cluster.from_outside(fleet.image, REACH, *expected)
    assert code == 0, out
    seen = dict(line.rsplit(" ", 1) for line in out.splitlines())
    assert seen == expected
    code, out = fleet.cluster.from_outside(fleet.image, GRPC_PROBE, "fleet-gateway:50051", "", "5")
    assert (code, out) == (0, "SERVING")


def test_a_worker_drains_on_sigterm_under_load(fleet: Fleet) -> None:
    """SIGTERM the busy worker: its in-flight calls finish, nothing fails, it exits 0 within its grace."""
    errors: list[str] = []
    served: list[tuple[float, str]] = []
    stop = threading.Event()

    def load() -> None:
        with fleet.client() as client:
            while not stop.is_set():
                try:
                    served.append((time.monotonic(), client.infer("shapes-det/1", SAMPLE, timeout=30).worker_id))
                except grpc.RpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(served) < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        busy = fleet.cluster.pod(served[-1][1])
        other = next(p for p in fleet.pods("fleet-worker") if p is not busy)
        grace = busy.workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        sent = time.monotonic()
        fleet.cluster.signal(busy, "TERM")
        code = fleet.cluster.wait_exit(busy, grace + 10)
        took = time.monotonic() - sent
        time.sleep(3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    logs = fleet.cluster.logs(busy)
    say(f"worker drained in {took:.1f}s; {len(served)} requests, {len(errors)} failed")
    assert code == 0, logs[-3000:]
    assert took < grace, f"{took:.1f}s, over the {grace}s grace period"
    assert "shutting down" in logs and "worker stopped" in logs, logs[-3000:]
    # The worker announces that it drains (heartbeat and health) and keeps serving for its drain notice,
    # so gateways stop sending before it stops accepting: no call may fail.
    assert not errors, errors[:5]
    after = [w for t, w in served if t > sent + 2]
    assert after and set(after) == {other.name}, "traffic moved to the other worker"
