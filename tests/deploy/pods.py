"""Run the pods of rendered manifests as podman containers, the way a kubelet would run them.

Each pod is one container on a podman network of the test's own, with its own network namespace
and IP (the pod IP: the downward API's ``status.podIP``), the DNS names of the Services that select
it (network aliases), its command, args and environment resolved as Kubernetes resolves them
(envFrom, env, ConfigMap/Secret keys, fieldRef, $(VAR)), its volumes (emptyDir as an empty writable
directory, ConfigMaps and Secrets as read-only files), its securityContext (user and group,
read-only root filesystem, capabilities dropped, no privilege escalation), its memory and CPU
limits, its init containers (each to completion first), and its grace period on stop. Probes are run as the kubelet runs them: gRPC health
checks against the pod IP and port, exec and TCP checks inside the pod's namespace.

``podman kube play`` is not used: in podman 4.3 (Debian 12) it knows only the kinds Pod,
Deployment, PersistentVolumeClaim and ConfigMap (no Service, StatefulSet or Secret), mounts no
emptyDir (from 4.4 on) and runs no gRPC probes, and Services would give no DNS names. So the
rendered pods are run this way; anything the translation does not know fails loudly.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.images import Podman
from tests.deploy.manifests import Doc, Manifests, container_env, expand, only_container, pod_spec

# One gRPC health check, run inside the pod with the image's own Python and grpcio.
GRPC_PROBE = """\
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
address, service, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
with grpc.insecure_channel(address) as channel:
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                          timeout=timeout)
    except grpc.RpcError as exc:
        print(exc.code().name); sys.exit(2)
print(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
sys.exit(0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1)
"""
TCP_PROBE = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3]))"
SUPPORTED_POD_FIELDS = {"containers", "initContainers", "volumes", "securityContext", "terminationGracePeriodSeconds",
                        "serviceAccountName", "automountServiceAccountToken", "enableServiceLinks",
                        "topologySpreadConstraints", "nodeSelector", "tolerations"}


def quantity(value: str | int) -> float:
    """A Kubernetes quantity (256Mi, 1Gi, 500m, 2) as a number of bytes or cores."""
    text = str(value)
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


@dataclass
class Pod:
    name: str
    ip: str
    workload: Doc
    container: Doc
    env: dict[str, str]

    @property
    def ctr(self) -> str:
        return self.name


@dataclass
class Cluster:
    """A podman network standing in for a cluster's pod network; pods started from workloads."""

    podman: Podman
    manifests: Manifests
    workdir: Path
    subnet: str  # three octets, e.g. "10.231.7": the pod network
    network: str = "fleet-test"
    # Outside the fleet: a second network, isolated from the pod network, that only the pods a
    # NetworkPolicy opens to every source also join (the gateway). Clients run there.
    edge_subnet: str = ""
    edge_network: str = "fleet-test-edge"
    pods: list[Pod] = field(default_factory=list)
    _next_ip: int = 10

    def create_network(self) -> None:
        self.podman("network", "create", "--subnet", f"{self.subnet}.0/24", "--opt", "isolate=true", self.network)
        if self.edge_subnet:
            self.podman("network", "create", "--subnet", f"{self.edge_subnet}.0/24", "--opt", "isolate=true",
                        self.edge_network)

    # -- starting pods -------------------------------------------------------------------------
    def start(self, workload_name: str, replicas: int | None = None,
              publish: dict[str, int] | None = None) -> list[Pod]:
        workload = next(w for w in self.manifests.workloads() if w["metadata"]["name"] == workload_name)
        spec = pod_spec(workload)
        unknown = set(spec) - SUPPORTED_POD_FIELDS
        assert not unknown, f"{workload_name}: pod fields this runner does not translate: {sorted(unknown)}"
        count = workload["spec"].get("replicas", 1) if replicas is None else replicas
        started = []
        for index in range(count):
            existing = sum(1 for p in self.pods if p.workload is workload)
            name = f"{workload_name}-{existing}"
            ip = f"{self.subnet}.{self._next_ip}"
            self._next_ip += 1
            started.append(self._run(workload, name, ip, publish if index == 0 else None))
        return started

    def _run(self, workload: Doc, name: str, ip: str, publish: dict[str, int] | None) -> Pod:
        spec, container = pod_spec(workload), only_container(workload)
        labels = workload["spec"]["template"]["metadata"]["labels"]
        fields = {"status.podIP": ip, "metadata.name": name,
                  "metadata.namespace": workload["metadata"].get("namespace", "default")}
        for init in spec.get("initContainers", []):
            # Each to completion, in order, before the pod's container starts (in the pod's volumes).
            env = container_env(self.manifests, init, fields, operator_secrets={})
            done = self.podman("run", "--rm", "--pull=never", "--network", self.network,
                               *self._container_args(spec, init, name, env), check=False, timeout=300)
            assert done.returncode == 0, f"{name}: init container {init['name']} failed:\n{done.stdout}{done.stderr}"
        env = container_env(self.manifests, container, fields, operator_secrets={})
        aliases = "".join(f",alias={s['metadata']['name']}" for s in self.manifests.services_selecting(labels))
        args = ["run", "--detach", "--name", name, "--hostname", name, "--pull=never",
                "--network", f"{self.network}:ip={ip}{aliases}"]
        if self.edge_subnet and self.manifests.open_to_every_source(labels):
            args += ["--network", f"{self.edge_network}:{aliases.lstrip(',')}" if aliases else self.edge_network]
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
        for port_name, host_port in (publish or {}).items():
            args += ["--publish", f"127.0.0.1:{host_port}:{ports[port_name]}"]
        args += ["--stop-timeout", str(spec.get("terminationGracePeriodSeconds", 30))]
        self.podman(*args, *self._container_args(spec, container, name, env))
        pod = Pod(name, ip, workload, container, env)
        self.pods.append(pod)
        return pod

    def _container_args(self, spec: Doc, container: Doc, pod_name: str, env: dict[str, str]) -> list[str]:
        """Security, limits, volumes, environment, then the image with its command and args."""
        args = self._security(spec, container) + self._resources(container)
        args += self._volumes(spec, container, pod_name)
        for key, value in sorted(env.items()):
            args += ["--env", f"{key}={value}"]
        command = [expand(c, env) for c in container.get("command", [])]
        cmd_args = [expand(a, env) for a in container.get("args", [])]
        if command:
            args += ["--entrypoint", json.dumps(command[:1])]
            cmd_args = command[1:] + cmd_args
        return [*args, container["image"], *cmd_args]

    @staticmethod
    def _security(spec: Doc, container: Doc) -> list[str]:
        pod_sc, sc = spec.get("securityContext", {}), container.get("securityContext", {})
        user, group = sc.get("runAsUser", pod_sc.get("runAsUser")), sc.get("runAsGroup", pod_sc.get("runAsGroup"))
        assert not sc.get("privileged"), "privileged containers are not run here"
        args = []
        if user is not None:
            args += ["--user", f"{user}:{group if group is not None else user}"]
        if pod_sc.get("fsGroup") is not None:
            args += ["--group-add", str(pod_sc["fsGroup"])]
        if sc.get("readOnlyRootFilesystem"):
            args += ["--read-only", "--read-only-tmpfs=false"]
        caps = sc.get("capabilities", {})
        for cap in caps.get("drop", []):
            args += ["--cap-drop", cap.lower()]
        for cap in caps.get("add", []):
            args += ["--cap-add", cap.lower()]
        if sc.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        return args

    @staticmethod
    def _resources(container: Doc) -> list[str]:
        limits = container.get("resources", {}).get("limits", {})
        args = []
        if "memory" in limits:
            args += ["--memory", str(int(quantity(limits["memory"])))]
        if "cpu" in limits:
            args += ["--cpus", f"{quantity(limits['cpu']):g}"]
        return args

    def _volumes(self, spec: Doc, container: Doc, pod_name: str) -> list[str]:
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        args = []
        for mount in container.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            path = mount["mountPath"]
            if "emptyDir" in volume:
                # As the kubelet makes one: an empty, world-writable directory (its size limit is
                # enforced by eviction, which is not played here).
                folder = self.workdir / "volumes" / pod_name / mount["name"]
                folder.mkdir(parents=True, exist_ok=True)
                folder.chmod(0o777)
                args += ["--volume", f"{folder}:{path}:rw"]
            elif "configMap" in volume or "secret" in volume:
                kind = "ConfigMap" if "configMap" in volume else "Secret"
                source = volume.get("configMap") or volume["secret"]
                name = source.get("name") or source["secretName"]
                folder = self.workdir / "volumes" / pod_name / mount["name"]
                folder.mkdir(parents=True, exist_ok=True)
                try:
                    data = self.manifests.data(kind, name)
                except KeyError:
                    assert source.get("optional"), f"{kind} {name} is missing and not optional"
                    data = {}
                for key, value in data.items():
                    (folder / key).write_text(value)
                    (folder / key).chmod(0o444)
                args += ["--volume", f"{folder}:{path}:ro"]
            else:
                raise AssertionError(f"volume {mount['name']}: only emptyDir, configMap and secret are run here")
        return args

    # -- looking at pods -----------------------------------------------------------------------
    def pod(self, name: str) -> Pod:
        return next(p for p in self.pods if p.name == name)

    def running(self, pod: Pod) -> bool:
        done = self.podman("inspect", "--format", "{{.State.Running}}", pod.ctr, check=False)
        return done.stdout.strip() == "true"

    def logs(self, pod: Pod) -> str:
        done = self.podman("logs", pod.ctr, check=False)
        return done.stdout + done.stderr

    def exec(self, pod: Pod, *argv: str, timeout: float = 30) -> tuple[int, str]:
        done = self.podman("exec", pod.ctr, *argv, check=False, timeout=timeout)
        return done.returncode, (done.stdout + done.stderr).strip()

    def probe(self, pod: Pod, kind: str) -> tuple[bool, str]:
        """Run the pod's ``kind`` probe (livenessProbe, readinessProbe, startupProbe) once."""
        spec = pod.container[kind]
        timeout = str(spec.get("timeoutSeconds", 1))
        ports = {p["name"]: p["containerPort"] for p in pod.container.get("ports", [])}
        if "grpc" in spec:
            address = f"{pod.ip}:{spec['grpc']['port']}"
            code, out = self.exec(pod, "python3", "-c", GRPC_PROBE, address, spec["grpc"].get("service", ""), timeout)
        elif "exec" in spec:
            code, out = self.exec(pod, *spec["exec"]["command"])
        elif "tcpSocket" in spec:
            port = spec["tcpSocket"]["port"]
            code, out = self.exec(pod, "python3", "-c", TCP_PROBE, pod.ip, str(ports.get(port, port)), timeout)
        else:
            raise AssertionError(f"{kind}: only grpc, exec and tcpSocket probes are run here")
        return code == 0, out

    def wait_ready(self, pod: Pod, timeout_s: float) -> float:
        """Seconds until the startup probe (if any) and then the readiness probe succeed."""
        start = time.monotonic()
        for kind in ("startupProbe", "readinessProbe"):
            if kind not in pod.container:
                continue
            while True:
                ok, out = self.probe(pod, kind)
                if ok:
                    break
                if not self.running(pod):
                    raise AssertionError(f"{pod.name} exited before its {kind} passed:\n{self.logs(pod)[-3000:]}")
                if time.monotonic() - start > timeout_s:
                    raise AssertionError(f"{pod.name}: {kind} still failing after {timeout_s}s ({out}):\n"
                                         f"{self.logs(pod)[-3000:]}")
                time.sleep(0.3)
        return time.monotonic() - start

    def from_outside(self, image: str, script: str, *argv: str) -> tuple[int, str]:
        """Run ``python3 -c script`` in a throw-away container on the edge network only (a client namespace)."""
        done = self.podman("run", "--rm", "--pull=never", "--network", self.edge_network, "--user", "10001:10001",
                           "--read-only", "--cap-drop", "all", "--entrypoint", '["python3"]', image, "-c", script,
                           *argv, check=False, timeout=120)
        return done.returncode, (done.stdout + done.stderr).strip()

    def signal(self, pod: Pod, sig: str = "TERM") -> None:
        self.podman("kill", "--signal", sig, pod.ctr)

    def wait_exit(self, pod: Pod, timeout_s: float) -> int:
        done = self.podman("wait", pod.ctr, timeout=timeout_s)
        return int(done.stdout.strip().splitlines()[-1])
