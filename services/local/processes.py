"""A whole fleet as child processes on loopback: registries, workers, gateways (each with its workflow engine
process behind it, unless ``workflow_engine=False``), video pipelines replicas.

Used by ``fleet up``, the end-to-end tests and the benchmarks. Each service is a real
process started with ``python -m services.<name>``, configured through its environment,
and reports its bound ports through a ready file; ``stop`` sends SIGTERM (graceful) and
only kills what it started. ``restart`` starts a stopped (or killed) service again on the
same port; ``restart_redis`` does the same for a Redis the fleet was given (``EmbeddedRedis``).
The registry's database (SQLite in the state directory unless ``database_url`` is given) is
migrated before the first registry starts. With ``tls=True`` a development CA and certificates
are made in the state directory and every hop runs over TLS, with client certificates on the
internal plane (registry, workers). Workers may read local artifacts only from the catalog's
package directories (and the demo models).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fleet.keys import hash_api_key, new_admin_token
from fleet.paths import MODELS_DIR
from services.cache.embedded import EmbeddedRedis, free_port
from services.local.dev_tls import DevPki


class FleetStartError(RuntimeError):
    pass


def artifact_roots(catalog: Path, more: list[Path] | None = None) -> list[Path]:
    """The package directories a catalog names (where its file:// weights are), the demo models, and ``more``."""
    data = yaml.safe_load(catalog.read_text(encoding="utf-8")) or {}
    packages = {(catalog.parent / m["package"]).resolve() for m in data.get("models", []) if m.get("package")}
    return sorted(packages | {MODELS_DIR.resolve()} | {Path(p).resolve() for p in more or []})


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen[bytes]
    ready_file: Path
    log_path: Path
    module: str = ""
    prefix: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    port: int = 0
    metrics_port: int = 0
    http_port: int = 0  # the gateway's HTTP API, when it serves one
    tls: bool = False
    cpus: str = ""  # the taskset CPU list it is pinned to ("": any)
    stop_signalled: bool = False
    engine: ServiceProcess | None = None  # a gateway's workflow engine, when it runs as a process of its own

    @property
    def workflows(self) -> ServiceProcess:
        """The process that runs this gateway's workflows (its engine's, or its own): where their metrics are."""
        return self.engine or self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.http_port}" if self.http_port else ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                info = json.loads(self.ready_file.read_text())
                self.port, self.metrics_port = info["port"], info["metrics_port"]
                self.http_port = info.get("http_port", 0)
                return
            if not self.alive():
                raise FleetStartError(f"{self.name} exited with code {self.proc.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise FleetStartError(f"{self.name} was not ready within {timeout_s}s:\n{self.log_tail()}")

    def signal_stop(self) -> None:
        """Send SIGTERM (once) without waiting: the service drains and exits by itself."""
        if self.alive() and not self.stop_signalled:
            self.proc.send_signal(signal.SIGTERM)
            self.stop_signalled = True

    def terminate(self, timeout_s: float = 20.0) -> int | None:
        if self.alive():
            self.signal_stop()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait()


def _in_thread(fn) -> None:  # noqa: ANN001 - run ``asyncio.run(fn())`` even when called from inside a loop
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(fn())
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def migrate_database(url: str) -> None:
    """Bring the registry database at ``url`` to the current schema (what ``fleet-registry migrate`` does)."""
    from services.registry.__main__ import run_migrations  # noqa: PLC0415 - server-side import, on demand

    _in_thread(lambda: run_migrations(url))


def _name(kind: str, index: int) -> str:
    return kind if index == 0 else f"{kind}-{index}"


@dataclass
class LocalFleet:
    """Start with ``start()``; addresses are known once it returns."""

    redis_url: str
    catalog: Path
    workers: int = 1
    namespace: str = "fleet"
    state_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    worker_env: dict[str, str] = field(default_factory=dict)
    worker_cpus: list[str] = field(default_factory=list)  # per worker, a taskset CPU list ("" or absent: any)
    gateway_port: int = 0
    http_port: int = 0  # the gateway's HTTP API port (0: a free one)
    ready_timeout_s: float = 60.0
    registries: int = 1
    gateways: int = 1
    database_url: str = ""
    admin_token: str = ""
    catalog_prune: bool = False
    redis: EmbeddedRedis | None = None
    tls: bool = False
    artifact_roots: list[Path] = field(default_factory=list)  # beyond the catalog's package directories
    workflow_engine: bool = True  # each gateway's workflows run in an engine process of its own behind it
    workflow_engine_env: dict[str, str] = field(default_factory=dict)  # the engine processes' own settings
    pipelines: int = 0  # video pipelines replicas (services.pipelines)
    video_roots: list[Path] = field(default_factory=list)  # directories pipelines may read video files from
    processes: list[ServiceProcess] = field(default_factory=list)
    pki: DevPki | None = None

    def __post_init__(self) -> None:
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="fleet-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.database_url = self.database_url or f"sqlite:///{self.state_dir / 'registry.db'}"
        self.admin_token = self.admin_token or new_admin_token()
        # Registry ports are chosen up front so workers and gateways can be given them before they are up.
        self._registry_ports = [free_port() for _ in range(self.registries)]
        self._sealing_key = base64.urlsafe_b64encode(os.urandom(32)).decode()  # one per fleet (a Fernet key)
        if self.tls and self.pki is None:
            self.pki = DevPki(self.state_dir / "tls").ensure()

    @property
    def ca_path(self) -> Path | None:
        """The CA a client of this fleet must trust (None without TLS)."""
        return self.pki.ca if self.pki is not None else None

    # -- processes -------------------------------------------------------------------------
    def _spawn(self, name: str, module: str, prefix: str, extra: dict[str, str], cpus: str = "") -> ServiceProcess:
        """Start ``python -m module``; ``cpus`` (a taskset list such as "1") pins it to those CPUs."""
        assert self.state_dir is not None
        ready = self.state_dir / f"{name}.ready.json"
        ready.unlink(missing_ok=True)
        log_path = self.state_dir / f"{name}.log"
        env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "FLEET_REDIS_NAMESPACE": self.namespace,
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": "0",
            f"{prefix}METRICS_PORT": "0",
            f"{prefix}READY_FILE": str(ready),
            "PYTHONUNBUFFERED": "1",
            "FLEET_PARENT_PID": str(os.getpid()),  # the service exits if this process dies
            **(self.pki.service_env(prefix, internal=name != "gateway" and not name.startswith("pipelines"))
               if self.pki is not None else {}),
            **self.env,
            **extra,
        }
        env.pop("FLEET_ADMIN_TOKEN", None)  # services only ever see its hash
        argv = [sys.executable, "-m", module]
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]  # taskset execs the service: the pid stays the service's
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        service = ServiceProcess(name, proc, ready, log_path, module, prefix, extra, tls=self.pki is not None,
                                 cpus=cpus)
        self.processes.append(service)
        return service

    def start_registry(self, index: int = 0, catalog: bool = True) -> ServiceProcess:
        extra = {"FLEET_REGISTRY_PORT": str(self._registry_ports[index]),
                 "FLEET_REGISTRY_DATABASE_URL": self.database_url,
                 "FLEET_REGISTRY_ADMIN_TOKEN_SHA256": hash_api_key(self.admin_token)}
        if catalog:
            extra["FLEET_REGISTRY_CATALOG"] = str(self.catalog)
            extra["FLEET_REGISTRY_CATALOG_PRUNE"] = "true" if self.catalog_prune else "false"
        return self._spawn(_name("registry", index), "services.registry", "FLEET_REGISTRY_", extra)

    @property
    def registry_addresses(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self._registry_ports)

    def start_worker(self, index: int, extra: dict[str, str] | None = None, cpus: str = "") -> ServiceProcess:
        cpus = cpus or (self.worker_cpus[index] if index < len(self.worker_cpus) else "")
        return self._spawn(f"worker-{index}", "services.model_worker", "FLEET_WORKER_", {
            "FLEET_WORKER_WORKER_ID": f"worker-{index}",
            "FLEET_WORKER_REGISTRY_ADDRESS": self.registry_addresses,
            "FLEET_WORKER_ARTIFACT_ROOTS": ",".join(str(p) for p in artifact_roots(self.catalog, self.artifact_roots)),
            **self.worker_env,
            **(extra or {}),
        }, cpus=cpus)

    def start_gateway(self, workers: list[ServiceProcess], index: int = 0,
                      extra: dict[str, str] | None = None) -> ServiceProcess:
        """``extra``: environment of this gateway alone (over the fleet's ``env``), e.g. a setting one test needs;
        with ``workflow_engine`` its engine process is started first, with the same ``extra``."""
        common = {"FLEET_GATEWAY_REGISTRY_ADDRESS": self.registry_addresses,
                  "FLEET_GATEWAY_WORKERS": ",".join(w.address for w in workers)}
        engine = None
        if self.workflow_engine and (extra or {}).get("FLEET_GATEWAY_WORKFLOWS_ADDRESS", None) != "":
            engine = self.start_workflow_engine(index, {**common, **(extra or {})})
            engine.wait_ready(self.ready_timeout_s)
            common.update(FLEET_GATEWAY_WORKFLOWS_ADDRESS=engine.address,
                          FLEET_GATEWAY_WORKFLOWS_HTTP_ADDRESS=f"127.0.0.1:{engine.http_port}")
        gateway = self._spawn(_name("gateway", index), "services.gateway", "FLEET_GATEWAY_", {
            "FLEET_GATEWAY_PORT": str(self.gateway_port if index == 0 else 0),
            "FLEET_GATEWAY_HTTP_PORT": str(self.http_port if index == 0 else 0),
            **common,
            **(extra or {}),
        })
        gateway.engine = engine
        return gateway

    def start_workflow_engine(self, index: int, extra: dict[str, str]) -> ServiceProcess:
        """A gateway in the workflows role, on ports chosen now (so ``restart`` brings it back where its gateway
        looks for it)."""
        return self._spawn(_name("workflows", index), "services.gateway", "FLEET_GATEWAY_", {
            **extra,
            **self.workflow_engine_env,
            "FLEET_GATEWAY_ROLE": "workflows",
            "FLEET_GATEWAY_PORT": str(free_port()),
            "FLEET_GATEWAY_HTTP_PORT": str(free_port()),
            "FLEET_GATEWAY_WORKFLOWS_ADDRESS": "",
            "FLEET_GATEWAY_WORKFLOWS_HTTP_ADDRESS": "",
        })

    def start_pipelines(self, index: int = 0, extra: dict[str, str] | None = None) -> ServiceProcess:
        return self._spawn(_name("pipelines", index), "services.pipelines", "FLEET_PIPELINES_", {
            "FLEET_PIPELINES_HTTP_PORT": "0",
            "FLEET_PIPELINES_GATEWAY_ADDRESS": self.gateway.address,
            "FLEET_PIPELINES_REGISTRY_ADDRESS": self.registry_addresses,
            "FLEET_PIPELINES_REPLICA_ID": _name("pipelines", index),
            "FLEET_PIPELINES_FILE_ROOTS": ",".join(str(p) for p in self.video_roots),
            "FLEET_PIPELINES_KEY_SEALING_KEY": self._sealing_key,  # callers' keys encrypted in Redis
            **(extra or {}),
        })

    @property
    def pipelines_processes(self) -> list[ServiceProcess]:
        return [p for p in self.processes if p.name.split("-")[0] == "pipelines"]

    def start(self) -> LocalFleet:
        try:
            migrate_database(self.database_url)
            first = self.start_registry(0)
            workers = [self.start_worker(i) for i in range(self.workers)]
            first.wait_ready(self.ready_timeout_s)  # applies the catalog; the others share its database
            others = [self.start_registry(i, catalog=False) for i in range(1, self.registries)]
            for process in [*others, *workers]:
                process.wait_ready(self.ready_timeout_s)
            gateways = [self.start_gateway(workers, i) for i in range(self.gateways)]
            for gateway in gateways:
                gateway.wait_ready(self.ready_timeout_s)
            for replica in [self.start_pipelines(i) for i in range(self.pipelines)]:
                replica.wait_ready(self.ready_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, name: str) -> ServiceProcess:
        """Start service ``name`` again (after it stopped or was killed) on the same port."""
        old = self.service(name)
        old.kill()
        self.processes.remove(old)
        new = self._spawn(old.name, old.module, old.prefix, {**old.extra, f"{old.prefix}PORT": str(old.port)},
                          cpus=old.cpus)
        new.engine = old.engine
        for gateway in self.gateway_processes:
            if gateway.engine is old:
                gateway.engine = new
        new.wait_ready(self.ready_timeout_s)
        return new

    def restart_redis(self) -> None:
        """Stop the fleet's own Redis and start an empty one on the same port."""
        assert self.redis is not None, "restart_redis needs the fleet's own EmbeddedRedis"
        self.redis.stop()
        self.redis.start()

    # -- access ------------------------------------------------------------------------------
    def service(self, name: str) -> ServiceProcess:
        return next(p for p in self.processes if p.name == name)

    @property
    def gateway(self) -> ServiceProcess:
        return self.service("gateway")

    @property
    def registry(self) -> ServiceProcess:
        return self.service("registry")

    @property
    def gateway_processes(self) -> list[ServiceProcess]:
        return [p for p in self.processes if p.name.split("-")[0] == "gateway"]

    @property
    def workflow_processes(self) -> list[ServiceProcess]:
        """The gateways' workflow engines (each behind its gateway)."""
        return [p for p in self.processes if p.name.split("-")[0] == "workflows"]

    @property
    def registry_processes(self) -> list[ServiceProcess]:
        return [p for p in self.processes if p.name.split("-")[0] == "registry"]

    @property
    def worker_processes(self) -> list[ServiceProcess]:
        return [p for p in self.processes if p.name.startswith("worker-")]

    def stop(self) -> dict[str, int | None]:
        """SIGTERM the gateways, then every worker at once (each drains for its notice), then the rest; returns
        their exit codes."""
        gateways, workers = self.gateway_processes + self.workflow_processes, self.worker_processes
        codes = {service.name: service.terminate() for service in self.pipelines_processes}
        codes.update({service.name: service.terminate() for service in gateways})
        for service in workers:
            service.signal_stop()
        rest = [p for p in self.processes if p not in gateways and p not in workers and p.name not in codes]
        codes.update({service.name: service.terminate() for service in (*workers, *rest)})
        return codes

    def __enter__(self) -> LocalFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
