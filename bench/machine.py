"""Where the numbers were taken: CPU, memory, versions, commit, date and competing load."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil

from fleet.paths import REPO_ROOT



def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def competing_jobs(interval_s: float = 1.0, threshold: float = 20.0) -> list[str]:
    """Other processes using over ``threshold`` % of a CPU now (e.g. a model training), sampled over ``interval_s``."""
    procs = [p for p in psutil.process_iter(["cmdline"]) if p.pid != os.getpid()]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(interval_s)
    found = []
    for p in procs:
        try:
            pct = p.cpu_percent(None)
        except psutil.Error:
            continue
        if pct > threshold:
            found.append(f"{' '.join(p.info['cmdline'] or [])[:120]} ({pct:.0f}% CPU)")
    return found


def machine_info() -> dict:
    vm = psutil.virtual_memory()
    status = _git("status", "--porcelain", "--untracked-files=no").splitlines()
    dirty = sorted(line.split(maxsplit=1)[-1] for line in status)
    return {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "ram_gib": round(vm.total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime"),
        "grpcio": _version("grpcio"),
        "numpy": _version("numpy"),
        "opencv": _version("opencv-python-headless"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_uncommitted": dirty,  # tracked files changed in the working tree (they were measured too)
        "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "competing_jobs_at_start": competing_jobs(),
    }
