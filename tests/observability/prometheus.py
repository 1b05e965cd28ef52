"""A real Prometheus for the tests: Debian's package (installed here when missing), run as a child."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from services.cache.embedded import free_port

_install_note: list[str] = []


def binaries() -> tuple[str, str]:
    """Paths of ``prometheus`` and ``promtool``, installing Debian's package once if they are missing;
    skips (with the reason printed) only when it cannot be had."""
    found = shutil.which("prometheus"), shutil.which("promtool")
    if all(found):
        return found  # type: ignore[return-value]
    if not _install_note:
        _install_note.append(_install())
    found = shutil.which("prometheus"), shutil.which("promtool")
    if not all(found):
        reason = f"Prometheus is not installed and could not be: {_install_note[0]}"
        print(reason)
        pytest.skip(reason)
    return found  # type: ignore[return-value]


def _install() -> str:
    if not shutil.which("apt-get"):
        return "no apt-get on this machine"
    if os.geteuid() != 0:
        return "apt-get needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", "prometheus"]
    for attempt in range(2):
        out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if out.returncode == 0:
            return "installed"
        if attempt == 0:  # stale or missing package lists
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=900)
    return f"apt-get install prometheus failed: {out.stderr.strip()[-500:]}"


class Prometheus:
    """``prometheus`` scraping ``targets`` ({job: [host:port]}) every second, with ``rule_files`` loaded."""

    def __init__(self, targets: dict[str, list[str]], rule_files: list[Path]) -> None:
        self.binary = binaries()[0]
        self.dir = Path(tempfile.mkdtemp(prefix="fleet-prometheus-"))
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": addrs}]}
                               for job, addrs in targets.items()],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60.0) -> Prometheus:
        log = (self.dir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=1h"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.dir / 'prometheus.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready within {timeout_s}s")

    def wait_scraped(self, targets: int, timeout_s: float = 30.0) -> None:
        """Until every target has been scraped successfully at least once."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len([r for r in self.query("up == 1")]) >= targets:
                return
            time.sleep(0.2)
        raise RuntimeError(f"prometheus did not scrape {targets} targets within {timeout_s}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def api(self, path: str, **params: str) -> object:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=30) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """The instant vector (or scalar, as one sample) ``expr`` evaluates to now."""
        data = self.api("query", query=expr)
        assert isinstance(data, dict)
        return data["result"] if data["resultType"] in ("vector", "matrix") else [{"value": data["result"]}]
