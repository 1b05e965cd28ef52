"""The rendered Kubernetes manifests (`kubectl kustomize`), and reading them as Kubernetes would."""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.host import REPO_ROOT

K8S_DIR = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("cpu", "gpu", "dev", "cert-manager")
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
FLEET_COMPONENTS = ("gateway", "workflows", "registry", "worker", "pipelines")

Doc = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed on this machine")
    return found


def render_dir(path: Path) -> list[Doc]:
    done = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed:\n{done.stderr}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@functools.cache
def _rendered(overlay: str) -> tuple[Doc, ...]:
    return tuple(render_dir(K8S_DIR / "overlays" / overlay))


def render(overlay: str) -> list[Doc]:
    return list(_rendered(overlay))


@dataclass(frozen=True)
class Manifests:
    """One rendered overlay, with the look-ups Kubernetes itself does."""

    docs: list[Doc]

    def of_kind(self, *kinds: str) -> list[Doc]:
        return [d for d in self.docs if d["kind"] in kinds]

    def get(self, kind: str, name: str) -> Doc:
        found = [d for d in self.docs if d["kind"] == kind and d["metadata"]["name"] == name]
        if not found:
            raise KeyError(f"no {kind} named {name}")
        return found[0]

    def workloads(self) -> list[Doc]:
        return self.of_kind(*WORKLOAD_KINDS)

    def fleet_workloads(self) -> list[Doc]:
        return [w for w in self.workloads() if component(w) in FLEET_COMPONENTS]

    def data(self, kind: str, name: str) -> dict[str, str]:
        """A ConfigMap's or Secret's keys and values (Secret data decoded)."""
        doc = self.get(kind, name)
        if kind == "Secret":
            values = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
            return {**values, **(doc.get("stringData") or {})}
        return dict(doc.get("data") or {})

    def services_selecting(self, labels: dict[str, str]) -> list[Doc]:
        return [s for s in self.of_kind("Service")
                if s["spec"].get("selector") and selects({"matchLabels": s["spec"]["selector"]}, labels)]

    def open_to_every_source(self, labels: dict[str, str]) -> bool:
        """True when a NetworkPolicy selecting these pod labels admits some port from anywhere."""
        return any(selects(policy["spec"]["podSelector"], labels)
                   and any("from" not in rule for rule in policy["spec"].get("ingress", []))
                   for policy in self.of_kind("NetworkPolicy"))


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions) against a pod's labels."""
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def component(workload: Doc) -> str:
    return workload["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component", "")


def pod_spec(workload: Doc) -> Doc:
    return workload["spec"]["template"]["spec"]


def only_container(workload: Doc) -> Doc:
    containers = pod_spec(workload)["containers"]
    assert len(containers) == 1, f"{workload['metadata']['name']}: one container per pod expected"
    return containers[0]


FIELD_SAMPLES = {"status.podIP": "10.1.2.3", "metadata.name": "pod-0", "metadata.namespace": "inference-fleet"}
# Secrets the operator creates (docs/deploy.md), with sample values, where an overlay does not make them.
OPERATOR_SECRETS = {"fleet-registry-database": {"url": "postgresql://fleet:secret@db.example.internal:5432/fleet"}}


def container_env(m: Manifests, container: Doc, fields: dict[str, str] | None = None,
                  operator_secrets: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The environment Kubernetes gives a container: envFrom first, env over it, $(VAR) expanded.

    ``fields`` answers the downward API (fieldRef paths), ``operator_secrets`` the Secrets an operator
    creates outside the manifests; sample values of both by default.
    """
    fields = fields or FIELD_SAMPLES
    operator_secrets = OPERATOR_SECRETS if operator_secrets is None else operator_secrets
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            kind, ref = "ConfigMap", source["configMapRef"]
        else:
            kind, ref = "Secret", source["secretRef"]
        try:
            values = m.data(kind, ref["name"])
        except KeyError:
            if ref.get("optional"):
                continue
            raise
        env.update({prefix + k: v for k, v in values.items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[item["name"]] = fields[source["fieldRef"]["fieldPath"]]
        elif "configMapKeyRef" in source or "secretKeyRef" in source:
            kind = "ConfigMap" if "configMapKeyRef" in source else "Secret"
            ref = source.get("configMapKeyRef") or source["secretKeyRef"]
            try:
                try:
                    values = m.data(kind, ref["name"])
                except KeyError:
                    if kind != "Secret" or ref["name"] not in operator_secrets:
                        raise
                    values = operator_secrets[ref["name"]]
                env[item["name"]] = values[ref["key"]]
            except KeyError:
                if not ref.get("optional"):
                    raise AssertionError(f"env {item['name']}: {kind} {ref['name']} (key {ref['key']}) "
                                         "is not in the manifests and not optional") from None
        else:
            raise AssertionError(f"env {item['name']}: unsupported source {sorted(source)}")
    return env


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion ($$ escapes; unknown references stay as written)."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            end = value.index(")", i)
            name = value[i + 2:end]
            out.append(env.get(name, value[i:end + 1]))
            i = end + 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)
