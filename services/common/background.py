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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

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

    def __init__(self, max_hold_s: float, window_s: float = 1.0, held: Callable[[float], None] | None = None) -> None:
        self.max_hold_s, self.window_s = max_hold_s, window_s
        self.active = 0  # interactive requests in flight
        self._last = -float("inf")  # time.monotonic() when the last one ended
        self._last_background = -float("inf")  # time.monotonic() when a background stage last asked for its turn
        self._held = held  # called with the seconds each background stage was held back
        self._clear = asyncio.Event()
        self._clear.set()

    @contextlib.contextmanager
    def interactive(self) -> Iterator[None]:
        self.active += 1
        self._clear.clear()
        try:
            yield
        finally:
            self.active -= 1
            self._last = time.monotonic()
            if self.active == 0:
                self._clear.set()

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
        if self.active == 0 or self.max_hold_s <= 0:
            return
        started = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._clear.wait(), self.max_hold_s)
        if self._held is not None:
            self._held(time.perf_counter() - started)


#: Background work that never waits (where no ``Turns`` is given).
NO_TURNS = Turns(0.0, window_s=0.0)
