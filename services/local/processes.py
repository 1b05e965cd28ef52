"""A whole fleet as child processes on loopback: registry, workers, gateway.

Used by ``fleet up``, the end-to-end tests and the benchmarks. Each service is a real
process started with ``python -m services.<name>``, configured through its environment,
and reports its bound ports through a ready file; ``stop`` sends SIGTERM (graceful) and
only kills what it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class FleetStartError(RuntimeError):
    pass


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen[bytes]
    ready_file: Path
    log_path: Path
    port: int = 0
    metrics_port: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

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
                return
            if not self.alive():
                raise FleetStartError(f"{self.name} exited with code {self.proc.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise FleetStartError(f"{self.name} was not ready within {timeout_s}s:\n{self.log_tail()}")

    def terminate(self, timeout_s: float = 15.0) -> int | None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
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
    gateway_port: int = 0
    ready_timeout_s: float = 60.0
    processes: list[ServiceProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.state_dir is None:
            self.state_dir = Path(tempfile.mkdtemp(prefix="fleet-"))
        self.state_dir.mkdir(parents=True, exist_ok=True)

    # -- processes -------------------------------------------------------------------------
    def _spawn(self, name: str, module: str, prefix: str, extra: dict[str, str]) -> ServiceProcess:
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
            **self.env,
            **extra,
        }
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", module], env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        service = ServiceProcess(name, proc, ready, log_path)
        self.processes.append(service)
        return service

    def start_registry(self) -> ServiceProcess:
        return self._spawn("registry", "services.registry", "FLEET_REGISTRY_",
                           {"FLEET_REGISTRY_CATALOG": str(self.catalog)})

    def start_worker(self, index: int, extra: dict[str, str] | None = None) -> ServiceProcess:
        return self._spawn(f"worker-{index}", "services.model_worker", "FLEET_WORKER_", {
            "FLEET_WORKER_WORKER_ID": f"worker-{index}",
            **self.worker_env,
            **(extra or {}),
        })

    def start_gateway(self, registry: ServiceProcess, workers: list[ServiceProcess]) -> ServiceProcess:
        return self._spawn("gateway", "services.gateway", "FLEET_GATEWAY_", {
            "FLEET_GATEWAY_PORT": str(self.gateway_port),
            "FLEET_GATEWAY_REGISTRY_ADDRESS": registry.address,
            "FLEET_GATEWAY_WORKERS": ",".join(w.address for w in workers),
        })

    def start(self) -> LocalFleet:
        try:
            registry = self.start_registry()
            workers = [self.start_worker(i) for i in range(self.workers)]
            registry.wait_ready(self.ready_timeout_s)
            for worker in workers:
                worker.wait_ready(self.ready_timeout_s)
            self.start_gateway(registry, workers).wait_ready(self.ready_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

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
    def worker_processes(self) -> list[ServiceProcess]:
        return [p for p in self.processes if p.name.startswith("worker-")]

    def stop(self) -> dict[str, int | None]:
        """SIGTERM every service, gateway first; returns their exit codes."""
        codes = {}
        for service in reversed(self.processes):
            codes[service.name] = service.terminate()
        return codes

    def __enter__(self) -> LocalFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
