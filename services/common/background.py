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
"""

from __future__ import annotations

import logging
import os
import threading
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


def background_pool(threads: int, nice: int, name: str, idle: bool = False) -> ThreadPoolExecutor:
    """A thread pool whose threads each run ``nice`` steps below the process's priority (0: at it), and with
    ``idle`` under SCHED_IDLE (see the module)."""
    return ThreadPoolExecutor(threads, thread_name_prefix=name, initializer=lower_this_thread, initargs=(nice, idle))
