"""The manifests and the image say what the code reads: settings, ports, probes, commands, metrics.

The settings classes are found from the code (console script -> entry point -> its settings class),
so a renamed or removed setting fails here before it fails on a cluster.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import json
import re
import tomllib
from pathlib import Path, PurePosixPath

import pytest
import yaml
from prometheus_client import REGISTRY
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.common.server import LIVENESS_SERVICE
from tests.deploy.host import REPO_ROOT
from tests.deploy.manifests import (
    OVERLAYS, Doc, Manifests, component, container_env, only_container, pod_spec, render, selects,
)

PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
SCRIPTS: dict[str, str] = PYPROJECT["project"]["scripts"]
VERSION: str = PYPROJECT["project"]["version"]
DOCKERFILE = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
IMAGE_MODELS = PurePosixPath("/opt/fleet/models")


def settings_class(script: str) -> type[BaseSettings]:
    """The settings class a console script's ``main`` reads (set by services.common.entrypoint)."""
    module, _, attr = SCRIPTS[script].partition(":")
    main = getattr(importlib.import_module(module), attr)
    return main.settings_class


def env_names(cls: type[BaseSettings]) -> dict[str, str]:
    """Every environment variable a settings class reads -> its field name."""
    prefix = cls.model_config.get("env_prefix", "")
    names = {}
    for field_name, field in cls.model_fields.items():
        alias = field.validation_alias
        choices = alias.choices if isinstance(alias, AliasChoices) else [f"{prefix}{field_name}".upper()]
        names.update({str(c): field_name for c in choices})
    return names


def settings_from(cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
    """The settings a process with exactly this environment would build (values validated)."""
    known = env_names(cls)
    with monkeypatch.context() as m:
        for name in known:
            m.delenv(name, raising=False)
        for name, value in env.items():
            m.setenv(name, value)
        return cls()


def fleet_containers() -> list[tuple[str, Manifests, Doc, Doc]]:
    out = []
    for overlay in OVERLAYS:
        m = Manifests(render(overlay))
        out += [(overlay, m, w, only_container(w)) for w in m.fleet_workloads()]
    return out


CASES = fleet_containers()
IDS = [f"{o}-{w['metadata']['name']}" for o, _, w, _ in CASES]


@pytest.mark.parametrize(("overlay", "m", "workload", "container"), CASES, ids=IDS)
def test_command_is_a_console_script_and_env_is_its_settings(overlay: str, m: Manifests, workload: Doc,
                                                             container: Doc, monkeypatch) -> None:
    command = container["command"]
    assert command[0] in SCRIPTS, f"{command[0]} is not a console script in pyproject.toml"
    assert command[0] == f"fleet-{component(workload)}"
    cls = settings_class(command[0])
    env = container_env(m, container)
    unknown = sorted(set(env) - set(env_names(cls)))
    assert not unknown, f"{overlay}/{workload['metadata']['name']} sets variables {cls.__name__} does not read: {unknown}"
    settings = settings_from(cls, env, monkeypatch)
    assert settings.host == "0.0.0.0"


@pytest.mark.parametrize(("overlay", "m", "workload", "container"), CASES, ids=IDS)
def test_init_containers_run_console_scripts_with_their_settings(overlay: str, m: Manifests, workload: Doc,
                                                                 container: Doc, monkeypatch) -> None:
    for init in pod_spec(workload).get("initContainers", []):
        command = init["command"]
        assert command[0] == container["command"][0], "an init container runs the same service's command"
        cls = settings_class(command[0])
        env = container_env(m, init)
        unknown = sorted(set(env) - set(env_names(cls)))
        assert not unknown, f"{overlay}/{init['name']}: {cls.__name__} does not read {unknown}"
        settings_from(cls, env, monkeypatch)
        main_env = container_env(m, container)
        assert all(main_env.get(k) == v for k, v in env.items()), "the init container sees the service's settings"
        assert init["securityContext"] == container["securityContext"]
    if component(workload) == "registry":
        assert [i["command"] for i in pod_spec(workload)["initContainers"]] == [["fleet-registry", "migrate"]]


@pytest.mark.parametrize(("overlay", "m", "workload", "container"), CASES, ids=IDS)
def test_ports_and_probes_match_the_settings(overlay: str, m: Manifests, workload: Doc, container: Doc,
                                             monkeypatch) -> None:
    settings = settings_from(settings_class(container["command"][0]), container_env(m, container), monkeypatch)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    expected = {"grpc": settings.port, "metrics": settings.metrics_port, "health": settings.health_port}
    if getattr(settings, "http_enabled", False):
        expected["http"] = settings.http_port
    assert ports == expected
    assert settings.metrics_port, "a fixed metrics port (0 would pick a random one)"
    # Native gRPC probes on the plaintext health port (the kubelet speaks no TLS; the gRPC port may):
    # startup and readiness read the overall health (SERVING once started, preloads included);
    # liveness the name that never waits for a model.
    assert settings.health_port and settings.health_port != settings.port
    for probe, service in (("startupProbe", ""), ("readinessProbe", ""), ("livenessProbe", LIVENESS_SERVICE)):
        spec = container[probe]
        assert set(spec) - {"periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold",
                            "initialDelaySeconds"} == {"grpc"}, f"{probe} must be a gRPC probe"
        assert spec["grpc"]["port"] == settings.health_port, probe
        assert spec["grpc"].get("service", "") == service, probe
    liveness = container["livenessProbe"]
    assert liveness["timeoutSeconds"] >= 2 and liveness["failureThreshold"] >= 3
    # The process must get its whole shutdown grace, after the preStop pause, before SIGKILL.
    pause = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod_spec(workload)["terminationGracePeriodSeconds"]
    assert grace >= pause + settings.shutdown_grace_s + 5, (grace, pause, settings.shutdown_grace_s)


@pytest.mark.parametrize(("overlay", "m", "workload", "container"), CASES, ids=IDS)
def test_no_setting_is_left_pointing_at_the_pod_itself(overlay: str, m: Manifests, workload: Doc, container: Doc,
                                                       monkeypatch) -> None:
    """A default such as registry_address=127.0.0.1:50052 is right for `fleet up`, wrong in a pod."""
    settings = settings_from(settings_class(container["command"][0]), container_env(m, container), monkeypatch)
    loopback = {name: value for name, value in settings.model_dump().items()
                if isinstance(value, str) and re.search(r"(^|[/@,])(127\.0\.0\.1|localhost)([:/,]|$)", value)}
    assert not loopback, f"{overlay}/{workload['metadata']['name']}: {loopback}"


@pytest.mark.parametrize(("overlay", "m", "workload", "container"), CASES, ids=IDS)
def test_writable_paths_are_volumes_and_files_exist(overlay: str, m: Manifests, workload: Doc, container: Doc,
                                                    monkeypatch) -> None:
    spec = pod_spec(workload)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["enableServiceLinks"] is False, "service links would set FLEET_<SERVICE>_PORT=tcp://..."
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {PurePosixPath(v["mountPath"]): volumes[v["name"]] for v in container["volumeMounts"]}

    def volume_of(path: str) -> Doc:
        path = PurePosixPath(path)
        best = max((mp for mp in mounts if path == mp or mp in path.parents), key=lambda p: len(p.parts),
                   default=None)
        assert best is not None, f"{path} is on the read-only root filesystem"
        return mounts[best]

    assert "emptyDir" in volume_of("/tmp")
    settings = settings_from(settings_class(container["command"][0]), container_env(m, container), monkeypatch)
    if component(workload) == "worker":
        assert "emptyDir" in volume_of(settings.model_cache_dir)
    if component(workload) == "registry":
        catalog = volume_of(settings.catalog)
        assert "configMap" in catalog
        data = m.data("ConfigMap", catalog["configMap"]["name"])
        text = data[PurePosixPath(settings.catalog).name]
        for model in yaml.safe_load(text)["models"]:
            package = PurePosixPath(model["package"])
            assert IMAGE_MODELS in package.parents, f"{package} is not inside the image's models"
            local = REPO_ROOT / "models" / package.relative_to(IMAGE_MODELS)
            assert (local / "model.json").exists() and (local / "model.onnx").exists(), package


def test_services_and_addresses_meet_the_pods() -> None:
    """Each Service's target ports are named container ports; addresses in settings name a Service port."""
    for overlay in OVERLAYS:
        m = Manifests(render(overlay))
        for service in m.of_kind("Service"):
            pods = [w for w in m.workloads()
                    if all(w["spec"]["template"]["metadata"]["labels"].get(k) == v
                           for k, v in service["spec"]["selector"].items())]
            assert pods, f"{overlay}: Service {service['metadata']['name']} selects no pods"
            for workload in pods:
                names = {p["name"] for c in pod_spec(workload)["containers"] for p in c.get("ports", [])}
                for port in service["spec"]["ports"]:
                    assert port["targetPort"] in names, (overlay, service["metadata"]["name"], port)
        service_ports = {(s["metadata"]["name"], p["port"]) for s in m.of_kind("Service") for p in s["spec"]["ports"]}
        for workload in m.fleet_workloads():
            env = container_env(m, only_container(workload))
            targets = [t.strip().removeprefix("dns:///") for k in env if k.endswith("_ADDRESS") and "ADVERTISE" not in k
                       for t in env[k].split(",") if t.strip()]
            targets += [re.sub(r"^redis://([^/:]+):(\d+).*", r"\1:\2", env["REDIS_URL"])]
            for target in targets:
                host, _, port = target.rpartition(":")
                assert (host, int(port)) in service_ports, f"{overlay}: {target} is no Service port"


def test_network_policies_name_real_ports() -> None:
    for overlay in OVERLAYS:
        m = Manifests(render(overlay))
        for policy in m.of_kind("NetworkPolicy"):
            pods = [w for w in m.workloads()
                    if selects(policy["spec"]["podSelector"], w["spec"]["template"]["metadata"]["labels"])]
            assert pods, f"{overlay}: NetworkPolicy {policy['metadata']['name']} selects no pods"
            names = {p["name"] for w in pods for c in pod_spec(w)["containers"] for p in c.get("ports", [])}
            for rule in policy["spec"].get("ingress", []):
                for port in rule.get("ports", []):
                    assert port["port"] in names, (overlay, policy["metadata"]["name"], port)


def test_worker_advertises_its_pod_ip() -> None:
    m = Manifests(render("dev"))
    container = only_container(m.get("Deployment", "fleet-worker"))
    sources = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert sources["FLEET_WORKER_ADVERTISE_ADDRESS"] == "status.podIP"
    env = container_env(m, container, {"status.podIP": "10.9.8.7", "metadata.name": "fleet-worker-abc"})
    cls = settings_class("fleet-worker")
    settings = cls.model_validate({env_names(cls)[k]: v for k, v in env.items()})
    assert settings.advertised(settings.port) == "10.9.8.7:50053"
    assert settings.worker_id == "fleet-worker-abc"


def test_images_are_this_version_and_variant() -> None:
    for overlay in OVERLAYS:
        for workload in Manifests(render(overlay)).fleet_workloads():
            image = only_container(workload)["image"]
            variant = "gpu" if overlay == "gpu" and component(workload) == "worker" else "cpu"
            assert image == f"inference-fleet:{VERSION}-{variant}", (overlay, image)
    build = (REPO_ROOT / "deploy" / "build-image.sh").read_text()
    assert 'IMAGE="${IMAGE:-inference-fleet:${VERSION}-${VARIANT}}"' in build


def test_autoscaler_metrics_exist_in_the_code() -> None:
    importlib.import_module("services.model_worker.server")  # registers the worker's instruments
    families = {}
    for collector in list(REGISTRY._collector_to_names):  # noqa: SLF001 - the registry's own index
        for name in REGISTRY._collector_to_names[collector]:  # noqa: SLF001
            families[name] = getattr(collector, "_labelnames", ())
    hpa = Manifests(render("cpu")).get("HorizontalPodAutoscaler", "fleet-worker")
    pods_metrics = [metric["pods"]["metric"] for metric in hpa["spec"]["metrics"] if metric["type"] == "Pods"]
    assert pods_metrics
    for metric in pods_metrics:
        assert metric["name"] in families, f"no metric {metric['name']} in the code"
        labels = set(metric.get("selector", {}).get("matchLabels", {}))
        assert labels <= set(families[metric["name"]]), (metric["name"], labels)


def test_dockerfile_env_and_commands_follow_the_code() -> None:
    env_block = re.search(r"^ENV PATH=.*?(?=^\S)", DOCKERFILE, re.S | re.M).group(0)
    image_env = dict(re.findall(r"(FLEET_[A-Z_]+)=(\S+)", env_block))
    readers = {n for script in ("fleet-gateway", "fleet-registry", "fleet-worker")
               for n in env_names(settings_class(script))}
    unknown = sorted(n for n in image_env if n not in readers and n != "FLEET_MODELS_DIR")
    assert not unknown, f"the Dockerfile sets variables no service reads: {unknown}"
    assert image_env["FLEET_WORKER_MODEL_CACHE_DIR"].startswith("/var/cache/inference-fleet")
    assert "/var/cache/inference-fleet" in re.search(r'^VOLUME (.*)$', DOCKERFILE, re.M).group(1)
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.M)
    for source in ("models/packages", "models/catalog.yaml"):
        assert re.search(rf"^COPY {source} ", DOCKERFILE, re.M), source
    allowed = Path(REPO_ROOT / ".dockerignore").read_text().split()
    # Every package setuptools installs (its find patterns, as in pyproject.toml) is in the build context.
    patterns = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {d.name for d in REPO_ROOT.iterdir() if (d / "__init__.py").exists()
                and any(fnmatch.fnmatch(d.name, pat) for pat in patterns)}
    assert packages >= {"fleet", "services"}
    for path in ("pyproject.toml", "README.md", "models/packages/", *(f"{pkg}/" for pkg in sorted(packages))):
        assert f"!{path}" in allowed, f".dockerignore leaves {path} out of the image's build context"


def test_prometheus_rule_and_dashboard_are_the_files_they_come_from() -> None:
    """components/monitoring carries the alert rules and the dashboard (python scripts/gen_monitoring.py)."""
    spec = importlib.util.spec_from_file_location("gen_monitoring", REPO_ROOT / "scripts/gen_monitoring.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.TARGET.read_text() == gen.render(), "run: python scripts/gen_monitoring.py"
    assert gen.DASHBOARD_TARGET.read_text() == gen.render_dashboard(), "run: python scripts/gen_monitoring.py"
    dashboard = Manifests(render("cpu")).get("ConfigMap", "inference-fleet-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["inference-fleet.json"]) == json.loads(gen.DASHBOARD.read_text())
    rule = Manifests(render("cpu")).get("PrometheusRule", "inference-fleet")
    assert rule["spec"]["groups"] == yaml.safe_load(gen.RULES.read_text())["groups"]
    monitor = Manifests(render("cpu")).get("PodMonitor", "inference-fleet")
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/component"  # job = gateway, registry, worker
