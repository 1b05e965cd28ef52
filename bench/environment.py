"""The fleet under test: Redis, a bench catalog, a LocalFleet and a local artifact server.

One fleet (registry, one worker, gateway, as real processes) serves every scenario after
the in-process baseline; it starts on first use. Its catalog registers the package as
``shapes-det/1``, as ``churn-NN/1`` for the churn scenario and as ``cold-file-NN/1`` /
``cold-http-NN/1`` (weights served over HTTP from here) for the cold-start scenario.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import yaml

from bench.config import BenchConfig
from bench.workload import CLASSIFIER_ID, CLASSIFIER_PACKAGE, MODEL_ID, WORKSPACE, Package
from services.local.processes import LocalFleet
from fleet.keys import hash_api_key
from services.cache.embedded import delete_namespace, machine_or_embedded
from services.model_worker.artifacts import ArtifactStore


def fleet_pids(fleet: LocalFleet, redis_url: str) -> dict[str, int]:
    """Processes whose CPU a scenario accounts for: this one (the client), the fleet's, and its Redis."""
    workers = fleet.worker_processes
    pids = {"client": psutil.Process().pid, "gateway": fleet.gateway.pid, "registry": fleet.registry.pid}
    if fleet.gateway.engine is not None:
        pids["workflows"] = fleet.gateway.engine.pid
    pids.update({"worker": workers[0].pid} if len(workers) == 1 else {w.name: w.pid for w in workers})
    port = redis_url.rsplit(":", 1)[-1].split("/")[0]
    for proc in psutil.process_iter(["name", "cmdline"]):
        if "redis-server" in (proc.info["name"] or "") and port in " ".join(proc.info["cmdline"] or []):
            pids["redis"] = proc.pid
            break
    return pids


def churn_ids(n: int) -> list[str]:
    return [f"churn-{i:02d}/1" for i in range(n)]


def cold_ids(kind: str, n: int) -> list[str]:
    return [f"cold-{kind}-{i:02d}/1" for i in range(n)]


def write_catalog(path: Path, api_key: str, entries: list[dict]) -> Path:
    """A catalog YAML: one workspace (holding the key's hash) and the given model entries."""
    data = {"workspaces": [{"name": WORKSPACE, "api_key_sha256": [hash_api_key(api_key)]}], "models": entries}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class FileServer:
    """Serves one directory over HTTP on 127.0.0.1 (the 'remote' artifact store)."""

    def __init__(self, directory: Path) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="artifact-http", daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class BenchEnv:
    """Everything the fleet scenarios share; ``close`` stops what was started and deletes its keys."""

    def __init__(self, cfg: BenchConfig, keep_logs: bool = False, worker_env: dict[str, str] | None = None,
                 env: dict[str, str] | None = None, workflow_engine: bool = True,
                 engine_env: dict[str, str] | None = None) -> None:
        self.cfg, self.keep_logs, self.worker_env, self.env = cfg, keep_logs, worker_env or {}, env or {}
        self.workflow_engine = workflow_engine  # workflows in an engine process behind the gateway (else in it)
        self.engine_env = engine_env or {}  # settings of the engine process alone
        self.package = Package(cfg.package)
        self.api_key = "fk_bench_" + secrets.token_urlsafe(16)
        self.namespace = f"bench-{uuid.uuid4().hex[:10]}"
        self.state_dir = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
        self.cache_dir = self.state_dir / "worker-cache"
        self._redis = contextlib.ExitStack()  # holds the embedded Redis, if one had to be started
        self._files: FileServer | None = None
        self._fleet: LocalFleet | None = None
        self._pids: dict[str, int] | None = None
        self.redis_url = ""
        self.observed: dict[str, dict] = {}  # outcomes of the scenarios run so far, by name

    @property
    def fleet(self) -> LocalFleet:
        if self._fleet is None:
            self._fleet = self._start()
        return self._fleet

    @property
    def worker(self):  # noqa: ANN201 - services.local.processes.ServiceProcess
        return self.fleet.worker_processes[0]

    def pids(self) -> dict[str, int]:
        """Processes whose CPU the scenarios account for (this process is the client); found once per fleet."""
        if self._pids is None:
            self._pids = self._find_pids()
        return self._pids

    def _find_pids(self) -> dict[str, int]:
        return fleet_pids(self.fleet, self.redis_url)

    def redis(self) -> str:
        """The Redis every fleet of this run uses (the machine's, or one started for the run)."""
        if not self.redis_url:
            self.redis_url = self._redis.enter_context(machine_or_embedded())
        return self.redis_url

    @contextlib.contextmanager
    def pinned_fleet(self, worker_cpus: list[str], env: dict[str, str],
                     worker_env: dict[str, str], name: str = "") -> Iterator[LocalFleet]:
        """A fleet of its own serving only ``MODEL_ID``: one worker per entry of ``worker_cpus``, pinned there
        ("": anywhere); ``name`` tells fleets with as many workers apart."""
        name = name or f"pinned-{len(worker_cpus)}"
        namespace = f"{self.namespace}-{name}"
        catalog = write_catalog(self.state_dir / f"{name}.yaml", self.api_key,
                                [{"id": MODEL_ID, "workspace": WORKSPACE, "package": str(self.package.path)}])
        fleet = LocalFleet(self.redis(), catalog, workers=len(worker_cpus), namespace=namespace,
                           state_dir=self.state_dir / name, env=env, worker_cpus=worker_cpus,
                           worker_env={"FLEET_WORKER_MODEL_CACHE_DIR": str(self.cache_dir), **worker_env})
        try:
            yield fleet.start()
        finally:
            fleet.stop()
            delete_namespace(self.redis_url, namespace)

    def cached_artifact(self) -> Path:
        return ArtifactStore(self.cache_dir).cached_path(self.package.spec.weights.sha256)

    def _catalog(self) -> Path:
        cfg, pkg, weights = self.cfg, str(self.package.path), self.package.weights
        assert self._files is not None
        entries = [{"id": MODEL_ID, "workspace": WORKSPACE, "package": pkg}]
        if CLASSIFIER_PACKAGE.joinpath("model.json").exists():  # the workflow scenarios' crop classifier
            entries.append({"id": CLASSIFIER_ID, "workspace": WORKSPACE, "package": str(CLASSIFIER_PACKAGE)})
        entries += [{"id": m, "workspace": WORKSPACE, "package": pkg} for m in churn_ids(cfg.churn_models)]
        entries += [{"id": m, "workspace": WORKSPACE, "package": pkg} for m in cold_ids("file", cfg.cold_repeats)]
        entries += [{"id": m, "workspace": WORKSPACE, "package": pkg, "artifact_uri": self._files.url(weights.name)}
                    for m in cold_ids("http", cfg.cold_repeats)]
        return write_catalog(self.state_dir / "catalog.yaml", self.api_key, entries)

    def _start(self) -> LocalFleet:
        self.redis()
        self._files = FileServer(self.package.weights.parent)
        fleet = LocalFleet(
            self.redis_url, self._catalog(), workers=1, namespace=self.namespace, state_dir=self.state_dir / "run",
            env=self.env, workflow_engine=self.workflow_engine, workflow_engine_env=self.engine_env, worker_env={"FLEET_WORKER_MAX_ACTIVE_MODELS": str(self.cfg.churn_capacity),
                        "FLEET_WORKER_MODEL_CACHE_DIR": str(self.cache_dir), **self.worker_env},
        )
        return fleet.start()

    def close(self) -> None:
        """Stop everything started (idempotent)."""
        if self._fleet is not None:
            self._fleet.stop()
            delete_namespace(self.redis_url, self.namespace)
            self._fleet = self._pids = None
        if self._files is not None:
            self._files.stop()
            self._files = None
        self._redis.close()
        self.redis_url = ""
        if not self.keep_logs:
            shutil.rmtree(self.state_dir, ignore_errors=True)
