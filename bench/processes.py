"""CPU time, thread wake-ups and memory of the processes taking part (client, gateway, worker, registry)."""

from __future__ import annotations

import os
import threading
import time

import psutil


def cpu_seconds(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def voluntary_switches(pid: int) -> int:
    """Voluntary context switches of every live thread of ``pid``: how often its threads slept and were
    woken (a count, which this machine's timing noise cannot move; threads gone meanwhile drop out)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("voluntary_ctxt_switches")), 0)
        except OSError:
            continue
    return total


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs; hypervisor steal counts as busy)."""
    t = psutil.cpu_times()._asdict()
    for not_busy in ("idle", "iowait", "guest", "guest_nice"):  # guest time is already in user/nice
        t.pop(not_busy, None)
    return sum(t.values())


class CpuMeter:
    """CPU seconds and thread wake-ups (voluntary context switches) of each named process between
    ``start`` and ``stop``, and what the rest of the machine used meanwhile ("others": load the
    benchmark did not make, which skews it)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._before: dict[str, float] = {}
        self._switches: dict[str, int] = {}
        self._busy = 0.0
        self._t0 = 0.0

    def start(self) -> CpuMeter:
        self._before = {name: cpu_seconds(p) for name, p in self.procs.items()}
        self._switches = {name: voluntary_switches(p.pid) for name, p in self.procs.items()}
        self._busy = busy_seconds()
        self._t0 = time.perf_counter()
        return self

    def stop(self, requests: int) -> dict:
        """Per process: CPU ms and wake-ups per request and cores busy; plus the total."""
        wall = max(1e-9, time.perf_counter() - self._t0)
        used = {name: cpu_seconds(p) - self._before[name] for name, p in self.procs.items()}
        woken = {name: max(0, voluntary_switches(p.pid) - self._switches[name]) for name, p in self.procs.items()}
        n = max(1, requests)
        out = {name: {"cpu_ms_per_request": s * 1e3 / n, "cores": s / wall, "wakeups_per_request": woken[name] / n}
               for name, s in used.items()}
        total = sum(used.values())
        out["total"] = {"cpu_ms_per_request": total * 1e3 / n, "cores": total / wall,
                        "wakeups_per_request": sum(woken.values()) / n}
        out["others_cores"] = max(0.0, (busy_seconds() - self._busy - total) / wall)
        return out


class RssSampler:
    """Samples a process's RSS every ``interval_s`` in a background thread."""

    def __init__(self, pid: int, interval_s: float) -> None:
        self.proc, self.interval_s = psutil.Process(pid), interval_s
        self.samples: list[tuple[float, int]] = []  # (seconds since start, rss bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.started = 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.perf_counter() - self.started, self.proc.memory_info().rss))
            except psutil.Error:
                return
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
