"""Threads for background work: a thread pool whose threads run at a lowered CPU priority (a higher nice).

On Linux, nice is per thread (``setpriority(PRIO_PROCESS, <thread id>)``), so a pool whose threads raise their
own nice when they start leaves the rest of the process (the event loop, interactive requests' threads) at
its priority: when both want a core, the scheduler gives the interactive threads most of it. Raising nice needs
no privilege (lowering it back would, so such threads are only ever used for background work). Where the
platform has no per-thread nice the pool's threads keep the process's priority.

SCHED_IDLE (``idle``) goes further: such a thread runs only when nothing else wants the core, and any
other thread that wakes preempts it at once and may be placed on its core as on an idle one, whichever
process or scheduling group either belongs to. Nice alone ranks threads within one scheduling group: on a desktop kernel with autogroup, each session (a process
started with its own session) is a group of its own, so this orders the threads of one process, not one
process against another; in a container the cgroup's CPU share does that.

Priorities alone do not isolate: on a few cores a background thread already running keeps its core until the
scheduler's slice ends (an interactive run spread over every core then waits for it at each of its operators),
and one holding the GIL holds up the process's event loop whatever its priority; and a thread lowered for good
also yields to work that is not interactive (a model load), so a workflow alone would wait on it. ``Turns``
tracks the process's interactive work and adds what the scheduler cannot do: while interactive work is in
flight, or was within ``window_s`` (``contended``), background stages (a decode, a model run, a
post-processing) are sent to SCHED_IDLE threads, and each may wait for its turn between stages up to
``max_hold_s`` (so it is never starved); without interactive traffic they run on threads of the process's
priority (a workflow alone is not slowed). The other way round, ``background_about`` says that background work
asked for a turn within ``window_s``: an interactive run then keeps to one thread (see the worker's pipeline).

What SCHED_IDLE and turns still leave to background work beside interactive requests is whatever the cores have
between them: on a few cores that is most of the time between two interactive calls, and the caches, the memory
bus and the GIL it then shares slow the next interactive request. ``cpu_share`` bounds it: background stages may
take that many CPU seconds a second between them while interactive work is in flight (a token bucket holding at
most ``burst_s``, charged by the pool ``metered`` wraps with each stage's CPU time in the proportion of its time
that overlapped interactive work), and a stage that finds the bucket spent while interactive work is about waits
until it has refilled. Background work thus goes on at that rate at least (never starved) and at full speed once
interactive traffic is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor

log = logging.getLogger("fleet.background")

MAX_NICE = 19


def lower_this_thread(nice: int, idle: bool = False) -> int:
    """Raise the calling thread's nice by ``nice`` (at most to 19) and, with ``idle``, move it to the
    SCHED_IDLE policy: the nice it has afterwards, or -1 where the platform cannot set it per thread."""
    if (nice <= 0 and not idle) or not hasattr(os, "setpriority"):
        return -1
    tid = threading.get_native_id()
    try:
        if idle and hasattr(os, "sched_setscheduler"):
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(MAX_NICE, current + max(0, nice)))
        return os.getpriority(os.PRIO_PROCESS, tid)
    except OSError as exc:  # a sandbox that forbids it: the work still runs, at the process's priority
        log.warning("could not lower a background thread's CPU priority (%s)", exc)
        return -1


def lower_this_process(nice: int) -> int:
    """Raise the nice of every thread this process has now by ``nice`` (at most to 19); threads started later
    inherit it from the thread that starts them. The process's new nice (of the calling thread), or -1 where the
    platform cannot set it. For a process that does only background work (the workflow engine's own)."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return -1
    try:
        threads = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]  # no /proc: the calling thread (the whole process where nice is per process)
    try:
        for tid in threads:
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                current = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, min(MAX_NICE, current + nice))
        now = os.getpriority(os.PRIO_PROCESS, 0)
    except OSError as exc:
        log.warning("could not lower the process's CPU priority (%s)", exc)
        return -1
    _lower_autogroup(now)
    return now


def _lower_autogroup(nice: int) -> None:
    """With the kernel's autogroups on (desktop kernels, many VMs), each session is a scheduling group of its
    own and shares the CPU equally with every other, whatever its threads' nice: a process that leads its own
    session (a service started with a session of its own) lowers its group's share too."""
    if os.getsid(0) != os.getpid():  # the group is a shell's session, not this process's alone: leave it
        return
    try:
        with open("/proc/self/autogroup", "w", encoding="ascii") as group:
            group.write(str(nice))
    except OSError:  # no autogroups (a container's cgroup decides), or not allowed: thread nice still applies
        pass


def background_pool(threads: int, nice: int, name: str, idle: bool = False) -> ThreadPoolExecutor:
    """A thread pool whose threads each run ``nice`` steps below the process's priority (0: at it), and with
    ``idle`` under SCHED_IDLE (see the module)."""
    return ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=lower_this_thread, initargs=(nice, idle))


class Turns:
    """Interactive work in flight in this process, and background work taking its turn between stages (see the
    module). Used on one event loop: ``interactive()`` around an interactive request's work, ``await
    turn()`` before each background stage: it returns at once with no interactive work in flight, else when
    there is none or after ``max_hold_s`` (0: background never waits); ``contended``: where the stage should
    run (on SCHED_IDLE threads when true)."""

    def __init__(self, max_hold_s: float, window_s: float = 1.0, held: Callable[[float], None] | None = None,
                 cpu_share: float = 0.0, burst_s: float = 0.02) -> None:
        self.max_hold_s, self.window_s = max_hold_s, window_s
        self.cpu_share, self.burst_s = cpu_share, burst_s  # 0: no bound on background CPU beside interactive
        self._tokens = burst_s  # CPU seconds background stages may still take now (negative: owed)
        self._typical, self._reserved = 0.0, 0.0  # a stage's CPU seconds (running mean); reserved by started ones
        self._busy_s, self._busy_since = 0.0, 0.0  # time with interactive work in flight (before the current spell)
        self._refilled = time.monotonic()
        self._tokens_lock = threading.Lock()  # charged from the pool's threads
        self.active = 0  # interactive requests in flight
        self._last = -float("inf")  # time.monotonic() when the last one ended
        self._last_background = -float("inf")  # time.monotonic() when a background stage last asked for its turn
        self._held = held  # called with the seconds each background stage was held back
        self._clear = asyncio.Event()
        self._clear.set()

    @contextlib.contextmanager
    def interactive(self) -> Iterator[None]:
        if self.active == 0:
            self._busy_since = time.monotonic()
        self.active += 1
        self._clear.clear()
        try:
            yield
        finally:
            self.active -= 1
            self._last = time.monotonic()
            if self.active == 0:
                self._busy_s += self._last - self._busy_since
                self._clear.set()

    def busy_s(self) -> float:
        """Seconds so far during which interactive work was in flight (read from any thread, without a lock:
        approximate while a request starts or ends meanwhile)."""
        since, total = self._busy_since, self._busy_s
        return total + (time.monotonic() - since if self.active > 0 else 0.0)

    @property
    def contended(self) -> bool:
        """Interactive work in flight, or ended less than ``window_s`` ago."""
        return self.active > 0 or time.monotonic() - self._last < self.window_s

    @property
    def background_about(self) -> bool:
        """A background stage asked for its turn less than ``window_s`` ago (workflows are running here)."""
        return time.monotonic() - self._last_background < self.window_s

    async def turn(self) -> None:
        self._last_background = time.monotonic()
        started, held = time.perf_counter(), False
        if self.active > 0 and self.max_hold_s > 0:
            held = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._clear.wait(), self.max_hold_s)
        while self.cpu_share > 0 and self.contended and (owed := self._admit()) > 0:
            held = True  # the share beside interactive work is spent: wait until it has refilled
            await asyncio.sleep(min(owed / self.cpu_share, self.window_s))
        if held and self._held is not None:
            self._held(time.perf_counter() - started)

    def _admit(self) -> float:
        """0 where a stage may start now (its likely cost, the mean of the last stages', reserved until a charge
        comes in: stages waiting together do not all start at once when the bucket refills), else the CPU
        seconds the bucket owes."""
        with self._tokens_lock:
            self._refill()
            if self._tokens < 0:
                return -self._tokens
            self._tokens -= self._typical
            self._reserved += self._typical
            return 0.0

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst_s, self._tokens + (now - self._refilled) * self.cpu_share)
        self._refilled = now
        if self._tokens >= self.burst_s:  # full: nothing is owed, whatever was reserved and never charged
            self._reserved = 0.0

    def tokens(self) -> float:
        """CPU seconds background stages may take now beside interactive work (negative: owed), refilled at
        ``cpu_share`` a second up to ``burst_s``."""
        with self._tokens_lock:
            self._refill()
            return self._tokens

    def charge(self, cpu_s: float) -> None:
        """A background stage took ``cpu_s`` CPU seconds (from any thread): taken from the bucket, and a
        reservation given back."""
        if self.cpu_share <= 0:
            return
        with self._tokens_lock:
            self._refill()
            refund = min(self._reserved, self._typical)
            self._reserved -= refund
            self._tokens = min(self.burst_s, self._tokens + refund - cpu_s)
            self._typical += (cpu_s - self._typical) * 0.2

    def metered(self, pool: Executor) -> Executor:
        """``pool``, each call it runs charged to this bucket with the CPU time of the thread that ran it (a
        one-thread ONNX Runtime session runs in that thread), in the proportion of its time that interactive
        work was in flight: a stage that ran between two interactive requests held nothing up. Unchanged
        without a share."""
        return _Metered(pool, self) if self.cpu_share > 0 else pool


class _Metered(Executor):
    """An executor running each call on ``pool`` and charging ``turns`` with the CPU seconds its thread spent on
    it while interactive work was in flight (its CPU time times the share of its wall time that overlapped)."""

    def __init__(self, pool: Executor, turns: Turns) -> None:
        self._pool, self._turns = pool, turns

    def submit(self, fn, /, *args, **kwargs):  # noqa: ANN001, ANN201 - Executor's signature
        return self._pool.submit(self._timed, fn, args, kwargs)

    def _timed(self, fn, args, kwargs):  # noqa: ANN001, ANN202
        cpu, wall, busy = time.thread_time(), time.monotonic(), self._turns.busy_s()
        try:
            return fn(*args, **kwargs)
        finally:
            cpu, wall, busy = time.thread_time() - cpu, time.monotonic() - wall, self._turns.busy_s() - busy
            # (busy_s is read without a lock: a read racing an interactive request's start or end may be off by
            # that request's time, hence the clamp)
            self._turns.charge(cpu * max(0.0, min(1.0, busy / wall)) if wall > 0 else 0.0)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait, cancel_futures=cancel_futures)


#: Background work that never waits (where no ``Turns`` is given).
NO_TURNS = Turns(0.0, window_s=0.0)
