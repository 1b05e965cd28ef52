"""Container limits the worker sizes itself by: cgroup v2 and v1 files, quota rounding, no limit."""

from __future__ import annotations

import os
from pathlib import Path

from services.model_worker import limits


def _write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_cgroup_v2_memory_and_cpu(tmp_path: Path) -> None:
    _write(tmp_path, "memory.max", str(3 << 30))
    _write(tmp_path, "cpu.max", "150000 100000")
    assert limits.memory_limit_bytes(tmp_path) == 3 << 30
    assert limits.cpu_quota(tmp_path) == 1.5
    assert limits.usable_cpus(tmp_path) == min(2, len(os.sched_getaffinity(0)))


def test_cgroup_v2_unlimited(tmp_path: Path) -> None:
    _write(tmp_path, "memory.max", "max")
    _write(tmp_path, "cpu.max", "max 100000")
    assert limits.memory_limit_bytes(tmp_path) is None
    assert limits.cpu_quota(tmp_path) is None
    assert limits.usable_cpus(tmp_path) == len(os.sched_getaffinity(0))


def test_cgroup_v1_files(tmp_path: Path) -> None:
    _write(tmp_path, "memory/memory.limit_in_bytes", str(512 << 20))
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "50000")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    assert limits.memory_limit_bytes(tmp_path) == 512 << 20
    assert limits.cpu_quota(tmp_path) == 0.5
    assert limits.usable_cpus(tmp_path) == 1  # a fraction of a CPU still gets one thread


def test_cgroup_v1_unlimited_and_missing(tmp_path: Path) -> None:
    _write(tmp_path, "memory/memory.limit_in_bytes", str(9223372036854771712))
    _write(tmp_path, "cpu/cpu.cfs_quota_us", "-1")
    _write(tmp_path, "cpu/cpu.cfs_period_us", "100000")
    assert limits.memory_limit_bytes(tmp_path) is None
    assert limits.cpu_quota(tmp_path) is None
    empty = tmp_path / "none"
    assert limits.memory_limit_bytes(empty) is None and limits.cpu_quota(empty) is None
