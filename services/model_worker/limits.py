"""What a worker may use inside a container: cgroup memory limit and CPU quota, CPU affinity.

``psutil.virtual_memory()`` and ``os.cpu_count()`` describe the node, not the pod: a worker
sized from them on a 64-core node under a 4-CPU, 4 GiB limit starts 64 threads and plans for
memory it would be OOM-killed for using.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except OSError:
        return None


def memory_limit_bytes(root: Path = CGROUP_ROOT) -> int | None:
    """The cgroup's memory limit (v2 ``memory.max``, else v1), or None when there is none."""
    for name in ("memory.max", "memory/memory.limit_in_bytes"):
        raw = _read(root / name)
        if raw is None:
            continue
        if raw == "max":
            return None
        value = int(raw)
        return None if value >= 1 << 60 else value  # v1 writes a huge number for "unlimited"
    return None


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs the cgroup's quota allows (v2 ``cpu.max``, else v1 cfs files), or None when unlimited."""
    raw = _read(root / "cpu.max")
    if raw is not None:
        quota, _, period = raw.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100_000)
    quota_us, period_us = _read(root / "cpu/cpu.cfs_quota_us"), _read(root / "cpu/cpu.cfs_period_us")
    if quota_us is None or period_us is None or int(quota_us) <= 0:
        return None
    return int(quota_us) / int(period_us)


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """CPUs this process may run on: its affinity, bounded by the cgroup quota (rounded up)."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 2
    quota = cpu_quota(root)
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)
